// The saliency attention of SME, Eq. (1), on a CPU: out = softmax(q k^T * scale) v for
// (B, Lq, D) queries and (B, Lk, D) keys and values, float32, row-major, never materialising the
// (Lq, Lk) scores of more than one query row. Built and loaded by runtime/kernels/cpu_attention.py.
//
// Head sizes are small (D = 4 at TSI's first stage, where Lk = 3136), so the work is Lk exponentials
// per query, not a GEMM, and the vector FMA unit is the bound (per W keys: D FMAs for the scores,
// 5 for the exponential's polynomial, D for exp * v). Keys and values are first packed per batch as
// [key block of W][D][W], so every inner step is one W-wide vector operation.
// A row is one pass where it can be: the exponentials are taken relative to an upper bound of the
// row's max instead of the max itself, the bound of the box of the keys' per-channel extremes,
// sum_c max(q_c min k_c, q_c max k_c). That is used where it is at most MAX_GAP above a lower
// bound of the max, the best score among W probe keys (for W sign patterns s over the first
// channels, the key maximising s . k): then the row's largest terms are at least 2^-MAX_GAP and
// those within 2^-24 of them stay normal floats. Otherwise (a loose box: scores of hundreds,
// where few keys matter) pass 1 writes the row's scores (Lk floats, in L1) and their max, and pass 2
// adds exp(score - max) and exp(...) * v. The one pass saves pass 1's store, max and reload and an
// FMA (benchmarks/results/cpu_attention.md times both). Its exponent is 2^(s - B) with B the bound
// rounded up to an integer, so s is reduced exactly and B only shifts the result's exponent: the
// rounding is that of the score alone (an FMA from -bound rounded relative to the bound, up to 2x
// torch's float32 error at scores of tens).
// Portable C++ with GCC/Clang vector extensions: W = 8 (AVX2 on x86-64, two NEON registers on Arm),
// W = 16 where the compiler targets AVX-512 (one zmm register).
// exp is 2^(x log2 e) with a degree-5 polynomial on [-0.5, 0.5] (relative error < 2e-7); with
// AVX-512 the rounding and the 2^n are one instruction each (vrndscaleps, vscalefps, which also
// takes any n, so no clamp): 1.29x faster than the 8-wide form at Lk = 3136, D = 4 on an AMD EPYC
// (Zen 4), the same error.
// In two passes the exponent of key j is one FMA, s_j log2(e) - m log2(e): rounded once, relative to s_j - m
// (scores in log2 units instead, rounded relative to s_j, cost up to 3x torch's float32 error at
// scores in the thousands); the rounding of m log2(e) is the whole row's and cancels in the sum.
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#if defined(__AVX512F__)
#include <immintrin.h>
#elif defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace {

#if defined(__AVX512F__)
constexpr int W = 16;       // floats per vector
#else
constexpr int W = 8;
#endif
typedef float v8 __attribute__((vector_size(4 * W)));  // "v8": W floats
typedef int v8i __attribute__((vector_size(4 * W)));
constexpr int LOG2_W = W == 16 ? 4 : 3;
constexpr int U = 4;        // vectors per step of pass 2: independent exp chains in flight
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LOWEST = -125.0f;  // 2^t below this is 0 (the 8-wide form: every result a normal float)
constexpr float MAX_GAP = 96.0f;   // log2 units: how far the one-pass bound may lie above the max

inline v8 splat(float x) { return v8{} + x; }

// 2^f for f in [-0.5, 0.5]: the degree-5 polynomial both forms and both exponentials share
inline v8 exp2_frac(v8 f) {
    v8 p = f * 1.3333558146428443e-3f + 9.6181291076284772e-3f;
    p = p * f + 5.5504108664821580e-2f;
    p = p * f + 2.4022650695910071e-1f;
    p = p * f + 6.9314718055994531e-1f;
    p = p * f + 1.0f;
    return p;
}

#if defined(__AVX512F__)
inline v8 exp2_neg(v8 t) {  // 2^t for t <= 0; 2^n of any n <= -150 is 0 (subnormals are flushed)
    const __m512 n = _mm512_roundscale_ps((__m512)t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v8 f = t - (v8)n;  // in [-0.5, 0.5]
    const v8 p = exp2_frac(f);
    return (v8)_mm512_scalef_ps((__m512)p, n);
}
inline v8 exp2_shifted(v8 s, v8 shift) {  // 2^(s - shift) for integer shift >= s: s is reduced exactly
    const __m512 n = _mm512_roundscale_ps((__m512)s, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v8 f = s - (v8)n;  // in [-0.5, 0.5], exact
    const v8 p = exp2_frac(f);
    return (v8)_mm512_scalef_ps((__m512)p, (__m512)((v8)n - shift));
}
#else
inline v8 exp2_neg(v8 t) {  // 2^t for t <= 0, 0 below LOWEST
    const v8i keep = t >= splat(LOWEST);
    t = keep ? t : splat(LOWEST);
    v8i n = __builtin_convertvector(t - 0.5f, v8i);  // round to nearest (t <= 0 truncates up)
    v8 f = t - __builtin_convertvector(n, v8);       // in [-0.5, 0.5]
    const v8 p = exp2_frac(f);
    return (v8)(((v8i)p + (n << 23)) & keep);
}
inline v8 exp2_shifted(v8 s, v8 shift) {  // 2^(s - shift) for integer shift >= s, 0 below 2^LOWEST
    const v8 magic = splat(12582912.0f);  // 1.5 x 2^23: adding it rounds |s| < 2^22 to an integer
    const v8 n = (s + magic) - magic;
    v8 e = n - shift;
    const v8i keep = e >= splat(LOWEST);
    e = keep ? e : splat(LOWEST);
    v8 f = s - n;  // in [-0.5, 0.5], exact
    const v8 p = exp2_frac(f);
    return (v8)(((v8i)p + (__builtin_convertvector(e, v8i) << 23)) & keep);
}
#endif

#if defined(__AVX512F__)
inline float hmax(v8 x) { return _mm512_reduce_max_ps((__m512)x); }
#else
inline float hmax(v8 x) { float m = x[0]; for (int l = 1; l < W; l++) m = x[l] > m ? x[l] : m; return m; }
#endif
inline float hsum(v8 x) { float s = 0; for (int l = 0; l < W; l++) s += x[l]; return s; }

// Packs (Lk, D) rows into [Lk / W][D][W] with zero keys past Lk.
void pack(const float *src, int lk, int d, int nvec, v8 *dst) {
    std::memset(static_cast<void *>(dst), 0, sizeof(v8) * nvec * d);
    float *out = reinterpret_cast<float *>(dst);
    for (int j = 0; j < lk; j++)
        for (int c = 0; c < d; c++) out[((j / W) * d + c) * W + j % W] = src[(size_t)j * d + c];
}

// The probe keys of one batch: for W sign patterns s over the first log2(W) channels (at most D),
// the key maximising s . k, packed [D][W] like a key block.
void probes(const float *k, int lk, int d, v8 *pk) {
    float *out = reinterpret_cast<float *>(pk);
    const int bits = d < LOG2_W ? d : LOG2_W;
    for (int p = 0; p < W; p++) {
        int best = 0;
        float top = -FLT_MAX;
        for (int j = 0; j < lk; j++) {
            float x = 0.0f;
            for (int c = 0; c < bits; c++) x += ((p >> c) & 1) ? -k[(size_t)j * d + c] : k[(size_t)j * d + c];
            if (x > top) { top = x; best = j; }
        }
        for (int c = 0; c < d; c++) out[c * W + p] = k[(size_t)best * d + c];
    }
}

// The per-channel extremes of a batch's keys, which bound every row's max.
struct Box {
    float lo[64], hi[64];
    Box(const float *k, int lk, int d) {
        for (int c = 0; c < d; c++) { lo[c] = FLT_MAX; hi[c] = -FLT_MAX; }
        for (int j = 0; j < lk; j++)
            for (int c = 0; c < d; c++) {
                const float x = k[(size_t)j * d + c];
                lo[c] = x < lo[c] ? x : lo[c];
                hi[c] = x > hi[c] ? x : hi[c];
            }
    }
};

// One query row in one pass, where the box bound is within MAX_GAP of the probes' best score;
// returns false (nothing written) where it is not. DT > 0 fixes D at compile time.
template <int DT>
bool row_one_pass(const float *qi, int d, float scale, const v8 *kt, const v8 *vt, int lk, int nvec,
                  const Box &box, const v8 *pk, float *oi) {
    const int D = DT > 0 ? DT : d;
    float qs[64];  // q in log2 units: its dot products are the scores 2^(s - shift) takes
    float bound = 0.0f;
    for (int c = 0; c < D; c++) {
        qs[c] = qi[c] * scale * LOG2E;
        const float a = qs[c] * box.lo[c], b = qs[c] * box.hi[c];
        bound += a > b ? a : b;
    }
    v8 lower = qs[0] * pk[0];
    for (int c = 1; c < D; c++) lower += qs[c] * pk[c];
    if (!(bound - hmax(lower) <= MAX_GAP)) return false;
    const v8 shift = splat(std::ceil(bound));  // an integer: 2^(s - shift) keeps s's own rounding
    v8 sum = v8{}, acc[64];
    for (int c = 0; c < D; c++) acc[c] = v8{};
    const int full = lk / W;
    auto score = [&](int jv) {
        const v8 *kb = kt + (size_t)jv * D;
        v8 t = qs[0] * kb[0];
        for (int c = 1; c < D; c++) t += qs[c] * kb[c];
        return t;
    };
    int jv = 0;
    for (; jv + U <= full; jv += U) {
        v8 e[U];
        for (int u = 0; u < U; u++) e[u] = exp2_shifted(score(jv + u), shift);
        for (int u = 0; u < U; u++) {
            const v8 *vb = vt + (size_t)(jv + u) * D;
            sum += e[u];
            for (int c = 0; c < D; c++) acc[c] += e[u] * vb[c];
        }
    }
    for (; jv < nvec; jv++) {
        v8 e = exp2_shifted(score(jv), shift);
        if (jv >= full)
            for (int l = lk - jv * W; l < W; l++) e[l] = 0.0f;  // padded keys
        const v8 *vb = vt + (size_t)jv * D;
        sum += e;
        for (int c = 0; c < D; c++) acc[c] += e * vb[c];
    }
    const float inv = 1.0f / hsum(sum);
    for (int c = 0; c < D; c++) oi[c] = hsum(acc[c]) * inv;
    return true;
}

// One query row in two passes (the max first); DT > 0 fixes D at compile time (the accumulators
// stay in registers).
template <int DT>
void row(const float *qi, int d, float scale, const v8 *kt, const v8 *vt, int lk, int nvec, v8 *s, float *oi) {
    const int D = DT > 0 ? DT : d;
    float qs[64];
    for (int c = 0; c < D; c++) qs[c] = qi[c] * scale;
    v8 mx = splat(-FLT_MAX);
    for (int jv = 0; jv < nvec; jv++) {
        const v8 *kb = kt + (size_t)jv * D;
        v8 acc = qs[0] * kb[0];
        for (int c = 1; c < D; c++) acc += qs[c] * kb[c];
        s[jv] = acc;
        mx = acc > mx ? acc : mx;
    }
    float *sf = reinterpret_cast<float *>(s);
    for (int j = lk; j < nvec * W; j++) sf[j] = -1e30f;  // padded keys: exp -> 0
    const v8 l2e = splat(LOG2E), ml2e = splat(hmax(mx) * LOG2E);
    v8 sum = v8{}, acc[64];
    for (int c = 0; c < D; c++) acc[c] = v8{};
    int jv = 0;
    for (; jv + U <= nvec; jv += U) {
        v8 e[U];
        for (int u = 0; u < U; u++) e[u] = exp2_neg(s[jv + u] * l2e - ml2e);
        for (int u = 0; u < U; u++) {
            const v8 *vb = vt + (size_t)(jv + u) * D;
            sum += e[u];
            for (int c = 0; c < D; c++) acc[c] += e[u] * vb[c];
        }
    }
    for (; jv < nvec; jv++) {
        v8 e = exp2_neg(s[jv] * l2e - ml2e);
        const v8 *vb = vt + (size_t)jv * D;
        sum += e;
        for (int c = 0; c < D; c++) acc[c] += e * vb[c];
    }
    const float inv = 1.0f / hsum(sum);
    for (int c = 0; c < D; c++) oi[c] = hsum(acc[c]) * inv;
}

template <int DT>
void attend(const float *q, const float *k, const float *v, float *o, int b, int lq, int lk, int d, float scale,
            v8 *kt, v8 *vt, v8 *s, int nvec) {
    for (int n = 0; n < b; n++) {
        pack(k + (size_t)n * lk * d, lk, d, nvec, kt);
        pack(v + (size_t)n * lk * d, lk, d, nvec, vt);
        const float *kn = k + (size_t)n * lk * d;
        const Box box(kn, lk, d);
        v8 pk[64];
        probes(kn, lk, d, pk);
        for (int i = 0; i < lq; i++) {
            const size_t r = ((size_t)n * lq + i) * d;
            if (!row_one_pass<DT>(q + r, d, scale, kt, vt, lk, nvec, box, pk, o + r))
                row<DT>(q + r, d, scale, kt, vt, lk, nvec, s, o + r);
        }
    }
}

}  // namespace

extern "C" {

// The interface version: cpu_attention.py refuses a library that reports another one.
int tsi_saliency_attention_version() { return 1; }

// Returns 0, or 1 for a head size outside 1..64, 2 for an allocation failure.
int tsi_saliency_attention(const float *q, const float *k, const float *v, float *o,
                           int b, int lq, int lk, int d, float scale) {
    if (d < 1 || d > 64) return 1;
    if (b <= 0 || lq <= 0 || lk <= 0) return 0;
    const int nvec = (lk + W - 1) / W;
    v8 *kt = static_cast<v8 *>(std::aligned_alloc(sizeof(v8), sizeof(v8) * nvec * d));
    v8 *vt = static_cast<v8 *>(std::aligned_alloc(sizeof(v8), sizeof(v8) * nvec * d));
    v8 *s = static_cast<v8 *>(std::aligned_alloc(sizeof(v8), sizeof(v8) * nvec));
    if (!kt || !vt || !s) { std::free(kt); std::free(vt); std::free(s); return 2; }
#if defined(__SSE__)
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040);  // flush and read subnormals as zero: they cost hundreds of cycles
#endif
    switch (d) {
        case 4: attend<4>(q, k, v, o, b, lq, lk, d, scale, kt, vt, s, nvec); break;
        case 8: attend<8>(q, k, v, o, b, lq, lk, d, scale, kt, vt, s, nvec); break;
        case 16: attend<16>(q, k, v, o, b, lq, lk, d, scale, kt, vt, s, nvec); break;
        default: attend<0>(q, k, v, o, b, lq, lk, d, scale, kt, vt, s, nvec); break;
    }
#if defined(__SSE__)
    _mm_setcsr(csr);
#endif
    std::free(kt); std::free(vt); std::free(s);
    return 0;
}

}  // extern "C"
