// The saliency attention of SME, Eq. (1), on a CPU: out = softmax(q k^T * scale) v for
// (B, Lq, D) queries and (B, Lk, D) keys and values, float32, row-major, never materialising the
// (Lq, Lk) scores of more than one query row. Built and loaded by runtime/kernels/cpu_attention.py.
//
// Head sizes are small (D = 4 at TSI's first stage, where Lk = 3136), so the work is Lk exponentials
// per query, not a GEMM: per query row, pass 1 writes its scores (Lk floats, in L1) and their max,
// pass 2 adds exp(score - max) and exp(...) * v over the keys. Keys and values are first packed
// per batch as [key block of W][D][W], so every inner step is one W-wide vector operation.
// Portable C++ with GCC/Clang vector extensions: W = 8 (AVX2 on x86-64, two NEON registers on Arm),
// W = 16 where the compiler targets AVX-512 (one zmm register).
// exp is 2^(x log2 e) with a degree-5 polynomial on [-0.5, 0.5] (relative error < 2e-7); with
// AVX-512 the rounding and the 2^n are one instruction each (vrndscaleps, vscalefps, which also
// takes any n, so no clamp): 1.29x faster than the 8-wide form at Lk = 3136, D = 4 on an AMD EPYC
// (Zen 4), the same error.
// The exponent of key j is one FMA, s_j log2(e) - m log2(e): rounded once, relative to s_j - m
// (scores in log2 units instead, rounded relative to s_j, cost up to 3x torch's float32 error at
// scores in the thousands); the rounding of m log2(e) is the whole row's and cancels in the sum.
#include <cfloat>
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
constexpr int U = 4;        // vectors per step of pass 2: independent exp chains in flight
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LOWEST = -125.0f;  // exp2 arguments are clamped here: every result stays a normal float

inline v8 splat(float x) { return v8{} + x; }

#if defined(__AVX512F__)
inline v8 exp2_neg(v8 t) {  // 2^t for t <= 0; 2^n of any n <= -150 is 0 (subnormals are flushed)
    const __m512 n = _mm512_roundscale_ps((__m512)t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v8 f = t - (v8)n;  // in [-0.5, 0.5]
    v8 p = f * 1.3333558146428443e-3f + 9.6181291076284772e-3f;
    p = p * f + 5.5504108664821580e-2f;
    p = p * f + 2.4022650695910071e-1f;
    p = p * f + 6.9314718055994531e-1f;
    p = p * f + 1.0f;
    return (v8)_mm512_scalef_ps((__m512)p, n);
}
#else
inline v8 exp2_neg(v8 t) {  // 2^t for t <= 0
    t = t < splat(LOWEST) ? splat(LOWEST) : t;
    v8i n = __builtin_convertvector(t - 0.5f, v8i);  // round to nearest (t <= 0 truncates up)
    v8 f = t - __builtin_convertvector(n, v8);       // in [-0.5, 0.5]
    v8 p = f * 1.3333558146428443e-3f + 9.6181291076284772e-3f;
    p = p * f + 5.5504108664821580e-2f;
    p = p * f + 2.4022650695910071e-1f;
    p = p * f + 6.9314718055994531e-1f;
    p = p * f + 1.0f;
    return (v8)((v8i)p + (n << 23));
}
#endif

inline float hmax(v8 x) { float m = x[0]; for (int l = 1; l < W; l++) m = x[l] > m ? x[l] : m; return m; }
inline float hsum(v8 x) { float s = 0; for (int l = 0; l < W; l++) s += x[l]; return s; }

// Packs (Lk, D) rows into [Lk / W][D][W] with zero keys past Lk.
void pack(const float *src, int lk, int d, int nvec, v8 *dst) {
    std::memset(static_cast<void *>(dst), 0, sizeof(v8) * nvec * d);
    float *out = reinterpret_cast<float *>(dst);
    for (int j = 0; j < lk; j++)
        for (int c = 0; c < d; c++) out[((j / W) * d + c) * W + j % W] = src[(size_t)j * d + c];
}

// One query row; DT > 0 fixes D at compile time (the accumulators stay in registers).
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
    for (int j = lk; j < nvec * W; j++) sf[j] = -1e30f;  // padded keys: exp -> 0 (or 2^-125), times v = 0
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
        for (int i = 0; i < lq; i++) {
            const size_t r = ((size_t)n * lq + i) * d;
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
