// The saliency attention of SME, Eq. (1), on a CPU: out = softmax(q k^T * scale) v for
// (B, Lq, D) queries and (B, Lk, D) keys and values, float32, never materialising the (Lq, Lk)
// scores. Each of q, k, v and out may instead be channel-major, (B, D, L): the layout of the feature
// maps they are reshaped from, so a graph need not transpose them (tsi_saliency_attention_layout).
// Built and loaded by runtime/kernels/cpu_attention.py (and, with ort_saliency_op.cpp, ort_op.py).
//
// Head sizes are small (D = 4 at TSI's first stage, where Lk = 3136), so the work is Lk exponentials
// per query, not a GEMM, and the vector FMA unit is the bound (per W keys: D FMAs for the scores,
// 5 for the exponential's polynomial, D for exp * v). Keys and values are first packed per batch as
// [key block of W][D][W], so every inner step is one W-wide vector operation.
// Every row is one pass. Where it can, the exponentials are taken relative to an upper bound of the
// row's max instead of the max itself, the bound of the box of the keys' per-channel extremes,
// sum_c max(q_c min k_c, q_c max k_c). That is used where it is at most MAX_GAP above a lower
// bound of the max, the best score among W probe keys (for W sign patterns s over the first
// channels, the key maximising s . k): then the row's largest terms are at least 2^-MAX_GAP and
// those within 2^-24 of them stay normal floats. Its exponent is 2^(s - B) with B the bound
// rounded up to an integer, so s is reduced exactly and B only shifts the result's exponent: the
// rounding is that of the score alone (an FMA from -bound rounded relative to the bound, up to 2x
// torch's float32 error at scores of tens).
// Otherwise (a loose box: scores of hundreds, where few keys matter) the max runs: the exponent of
// key j is (s_j - m) log2(e), m the best score seen so far, s_j - m exact near the max as torch's
// s - max is, and when a group of keys scores above m the sums so far are scaled by exp(m - m')
// (TSI-R50's captured stage-2 rows: one pass in 1.02 of the two passes' time it replaced, the loud
// row of benchmarks/results/cpu_attention.md in 0.88; one-off timings). An integer shift in log2
// units was tried first (0.81 on that row): float32 has no integers to shift by at the scores of an
// unnormalised model's deep stages (billions: the random-weight R50's stage 4), where it gave NaN.
// Portable C++ with GCC/Clang vector extensions: W = 8 (AVX2 on x86-64, two NEON registers on Arm),
// W = 16 where the compiler targets AVX-512 (one zmm register).
// exp is 2^(x log2 e) with a degree-5 polynomial on [-0.5, 0.5] (relative error < 2e-7); with
// AVX-512 the rounding and the 2^n are one instruction each (vrndscaleps, vscalefps, which also
// takes any n, so no clamp): 1.29x faster than the 8-wide form at Lk = 3136, D = 4 on an AMD EPYC
// (Zen 4), the same error.
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
constexpr int U = 4;        // vectors per step: independent exp chains in flight
// bound rows per pass over the keys: two with AVX-512's 32 registers (0.88 of one row's time at
// Lk = 3136, D = 4, one-off timing on an AMD EPYC; three or four slower), one with AVX2's 16 (two:
// 1.02 of one's)
constexpr int PAIR = W == 16 ? 2 : 1;
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LOWEST = -125.0f;  // 2^t below this is 0 (the 8-wide form: every result a normal float)
constexpr float MAX_GAP = 96.0f;   // log2 units: how far the one-pass bound may lie above the max
// the largest |bound| shifted by: the bound's own float32 rounding stays below one, so no score can
// lie above the shift (beyond it, the scores of an unnormalised model's deep stages, the max runs)
constexpr float MAX_BOUND = 4194304.0f;  // 2^22

inline bool tight(float bound, float best) { return bound - best <= MAX_GAP && std::fabs(bound) < MAX_BOUND; }

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
inline float hsum(v8 x) { return _mm512_reduce_add_ps((__m512)x); }
inline bool any_above(v8 x, v8 y) { return _mm512_cmp_ps_mask((__m512)x, (__m512)y, _CMP_GT_OQ) != 0; }
#else
inline float hmax(v8 x) { float m = x[0]; for (int l = 1; l < W; l++) m = x[l] > m ? x[l] : m; return m; }
inline float hsum(v8 x) { float s = 0; for (int l = 0; l < W; l++) s += x[l]; return s; }
inline bool any_above(v8 x, v8 y) {
    const v8i m = x > y;
    int any = 0;
    for (int l = 0; l < W; l++) any |= m[l];
    return any != 0;
}
#endif

// Where element (j, c) of an (L, D) matrix lies: row-major, or channel-major ((D, L) stored).
struct Strides {
    size_t j, c;
    Strides(int len, int d, bool channel_major) : j(channel_major ? 1 : d), c(channel_major ? len : 1) {}
};

// Packs the (Lk, D) keys or values into [Lk / W][D][W] with zero keys past Lk.
void pack(const float *src, Strides st, int lk, int d, int nvec, v8 *dst) {
    std::memset(static_cast<void *>(dst), 0, sizeof(v8) * nvec * d);
    float *out = reinterpret_cast<float *>(dst);
    for (int c = 0; c < d; c++)
        for (int j = 0; j < lk; j++) out[((j / W) * d + c) * W + j % W] = src[j * st.j + c * st.c];
}

// The probe keys of one batch: for W sign patterns s over the first log2(W) channels (at most D),
// the key maximising s . k, packed [D][W] like a key block.
void probes(const float *k, Strides st, int lk, int d, v8 *pk) {
    float *out = reinterpret_cast<float *>(pk);
    const int bits = d < LOG2_W ? d : LOG2_W;
    for (int p = 0; p < W; p++) {
        int best = 0;
        float top = -FLT_MAX;
        for (int j = 0; j < lk; j++) {
            float x = 0.0f;
            for (int c = 0; c < bits; c++) {
                const float kc = k[j * st.j + c * st.c];
                x += ((p >> c) & 1) ? -kc : kc;
            }
            if (x > top) { top = x; best = j; }
        }
        for (int c = 0; c < d; c++) out[c * W + p] = k[best * st.j + c * st.c];
    }
}

// The per-channel extremes of a batch's keys, which bound every row's max.
struct Box {
    float lo[64], hi[64];
    Box(const float *k, Strides st, int lk, int d) {
        for (int c = 0; c < d; c++) {
            lo[c] = FLT_MAX;
            hi[c] = -FLT_MAX;
            for (int j = 0; j < lk; j++) {
                const float x = k[j * st.j + c * st.c];
                lo[c] = x < lo[c] ? x : lo[c];
                hi[c] = x > hi[c] ? x : hi[c];
            }
        }
    }
};

// A row's box bound of its max and the probes' best score, in log2 units.
template <int DT>
void bounds_of(const float *qi, int d, float scale, const Box &box, const v8 *pk, float *bound, float *best) {
    const int D = DT > 0 ? DT : d;
    float qs[64], b = 0.0f;
    for (int c = 0; c < D; c++) {
        qs[c] = qi[c] * scale * LOG2E;
        const float x = qs[c] * box.lo[c], y = qs[c] * box.hi[c];
        b += x > y ? x : y;
    }
    v8 lower = qs[0] * pk[0];
    for (int c = 1; c < D; c++) lower += qs[c] * pk[c];
    *bound = b;
    *best = hmax(lower);
}

// R consecutive query rows shifted by their box bounds, in one pass over the keys: each key block's
// k and v are loaded once for all R (PAIR says how many pay). DT > 0 fixes D at compile time.
template <int DT, int R>
void rows_bound(const float *q0, int d, float scale, const float *bounds, const v8 *kt, const v8 *vt, int lk,
                int nvec, float *o0) {
    const int D = DT > 0 ? DT : d;
    constexpr int DM = DT > 0 ? DT : 64;  // arrays of the compile-time D: kept in registers
    constexpr int UU = U / R;  // vectors per step: R x UU independent exp chains in flight
    float qs[R][DM];  // q in log2 units: its dot products are the scores 2^(s - shift) takes
    v8 shift[R], sum[R], acc[R][DM];
    for (int r = 0; r < R; r++) {
        for (int c = 0; c < D; c++) {
            qs[r][c] = q0[r * D + c] * scale * LOG2E;
            acc[r][c] = v8{};
        }
        shift[r] = splat(std::ceil(bounds[r]));  // an integer: 2^(s - shift) keeps s's own rounding
        sum[r] = v8{};
    }
    const int full = lk / W;
    int jv = 0;
    for (; jv + UU <= full; jv += UU) {
        v8 e[UU][R];
        for (int u = 0; u < UU; u++) {
            const v8 *kb = kt + (size_t)(jv + u) * D;
            v8 t[R];
            for (int r = 0; r < R; r++) t[r] = qs[r][0] * kb[0];
            for (int c = 1; c < D; c++) {
                const v8 x = kb[c];
                for (int r = 0; r < R; r++) t[r] += qs[r][c] * x;
            }
            for (int r = 0; r < R; r++) e[u][r] = exp2_shifted(t[r], shift[r]);
        }
        for (int u = 0; u < UU; u++) {
            const v8 *vb = vt + (size_t)(jv + u) * D;
            for (int r = 0; r < R; r++) sum[r] += e[u][r];
            for (int c = 0; c < D; c++) {
                const v8 x = vb[c];
                for (int r = 0; r < R; r++) acc[r][c] += e[u][r] * x;
            }
        }
    }
    for (; jv < nvec; jv++) {  // the last blocks, the padded one included
        const v8 *kb = kt + (size_t)jv * D, *vb = vt + (size_t)jv * D;
        for (int r = 0; r < R; r++) {
            v8 t = qs[r][0] * kb[0];
            for (int c = 1; c < D; c++) t += qs[r][c] * kb[c];
            v8 e = exp2_shifted(t, shift[r]);
            if (jv >= full)
                for (int l = lk - jv * W; l < W; l++) e[l] = 0.0f;  // padded keys
            sum[r] += e;
            for (int c = 0; c < D; c++) acc[r][c] += e * vb[c];
        }
    }
    for (int r = 0; r < R; r++) {
        const float inv = 1.0f / hsum(sum[r]);
        for (int c = 0; c < D; c++) o0[r * D + c] = hsum(acc[r][c]) * inv;
    }
}

// One query row in one pass with a running max, where the box bound is loose: the exponent of key
// j is (s_j - m) log2(e), m the best score seen so far (s_j - m exact near the max, as torch's
// s - max; then one rounding), and when a group of keys scores above m the sums so far are scaled by
// exp(m - m'), the new best (one rounding each time: a row's first groups, rarely later). Any
// magnitude: the scores of an unnormalised model's deep stages reach billions, where an integer
// shift in float32 is not one. DT > 0 fixes D at compile time.
template <int DT>
void row_running(const float *qi, int d, float scale, const v8 *kt, const v8 *vt, int lk, int nvec, float *oi) {
    const int D = DT > 0 ? DT : d;
    float qs[64];
    for (int c = 0; c < D; c++) qs[c] = qi[c] * scale;
    float m = -FLT_MAX;
    v8 mv = splat(m);
    const v8 l2e = splat(LOG2E);
    v8 sum = v8{}, acc[64];
    for (int c = 0; c < D; c++) acc[c] = v8{};
    const int full = lk / W;
    auto score = [&](int jv) {
        const v8 *kb = kt + (size_t)jv * D;
        v8 t = qs[0] * kb[0];
        for (int c = 1; c < D; c++) t += qs[c] * kb[c];
        return t;
    };
    auto raise = [&](v8 top) {  // m up to the group's best where that is above it
        if (!any_above(top, mv)) return;
        const float best = hmax(top);
        const v8 f = splat(static_cast<float>(std::exp(static_cast<double>(m) - best)));  // 0 from -FLT_MAX
        m = best;
        mv = splat(m);
        sum *= f;
        for (int c = 0; c < D; c++) acc[c] *= f;
    };
    int jv = 0;
    for (; jv + U <= full; jv += U) {
        v8 s[U];
        for (int u = 0; u < U; u++) s[u] = score(jv + u);
        v8 top = s[0];
        for (int u = 1; u < U; u++) top = s[u] > top ? s[u] : top;
        raise(top);
        for (int u = 0; u < U; u++) {
            const v8 e = exp2_neg((s[u] - mv) * l2e);
            const v8 *vb = vt + (size_t)(jv + u) * D;
            sum += e;
            for (int c = 0; c < D; c++) acc[c] += e * vb[c];
        }
    }
    for (; jv < nvec; jv++) {
        v8 s = score(jv);
        if (jv >= full)
            for (int l = lk - jv * W; l < W; l++) s[l] = -1e30f;  // padded keys: exp -> 0
        raise(s);
        const v8 e = exp2_neg((s - mv) * l2e);
        const v8 *vb = vt + (size_t)jv * D;
        sum += e;
        for (int c = 0; c < D; c++) acc[c] += e * vb[c];
    }
    const float inv = 1.0f / hsum(sum);
    for (int c = 0; c < D; c++) oi[c] = hsum(acc[c]) * inv;
}

// The bits of tsi_saliency_attention_layout's layout: that tensor is channel-major, (B, D, L).
constexpr int Q_CM = 1, K_CM = 2, V_CM = 4, O_CM = 8;

// qr and orow: (Lq, D) row-major scratch for a channel-major q or out.
template <int DT>
void attend(const float *q, const float *k, const float *v, float *o, int b, int lq, int lk, int d, float scale,
            int layout, v8 *kt, v8 *vt, int nvec, float *qr, float *orow) {
    const Strides ks(lk, d, layout & K_CM), vs(lk, d, layout & V_CM);
    const Strides qs(lq, d, layout & Q_CM), os(lq, d, layout & O_CM);
    for (int n = 0; n < b; n++) {
        const float *kn = k + (size_t)n * lk * d, *qn = q + (size_t)n * lq * d;
        pack(kn, ks, lk, d, nvec, kt);
        pack(v + (size_t)n * lk * d, vs, lk, d, nvec, vt);
        const Box box(kn, ks, lk, d);
        v8 pk[64];
        probes(kn, ks, lk, d, pk);
        if (layout & Q_CM) {
            for (int c = 0; c < d; c++)
                for (int i = 0; i < lq; i++) qr[i * d + c] = qn[i * qs.j + c * qs.c];
            qn = qr;
        }
        float *on = layout & O_CM ? orow : o + (size_t)n * lq * d;
        // the bound where it is within MAX_GAP of the probes' best, PAIR rows a pass; else the running max
        for (int i = 0; i < lq;) {
            const size_t r = (size_t)i * d;
            float bound[2], best[2];
            bounds_of<DT>(qn + r, d, scale, box, pk, &bound[0], &best[0]);
            const bool first = tight(bound[0], best[0]);  // false for NaN
            if (PAIR == 2 && first && i + 1 < lq) {
                bounds_of<DT>(qn + r + d, d, scale, box, pk, &bound[1], &best[1]);
                if (tight(bound[1], best[1])) {
                    rows_bound<DT, PAIR>(qn + r, d, scale, bound, kt, vt, lk, nvec, on + r);
                    i += 2;
                    continue;
                }
            }
            if (first)
                rows_bound<DT, 1>(qn + r, d, scale, bound, kt, vt, lk, nvec, on + r);
            else
                row_running<DT>(qn + r, d, scale, kt, vt, lk, nvec, on + r);
            i += 1;
        }
        if (layout & O_CM) {
            float *dst = o + (size_t)n * lq * d;
            for (int c = 0; c < d; c++)
                for (int i = 0; i < lq; i++) dst[i * os.j + c * os.c] = orow[i * d + c];
        }
    }
}

}  // namespace

extern "C" {

// The interface version: cpu_attention.py refuses a library that reports another one.
int tsi_saliency_attention_version() { return 2; }

// layout: Q_CM | K_CM | V_CM | O_CM, the tensors given channel-major, (B, D, L). Returns 0, or 1 for
// a head size outside 1..64, 2 for an allocation failure.
int tsi_saliency_attention_layout(const float *q, const float *k, const float *v, float *o, int b, int lq, int lk,
                                  int d, float scale, int layout) {
    if (d < 1 || d > 64) return 1;
    if (b <= 0 || lq <= 0 || lk <= 0) return 0;
    const int nvec = (lk + W - 1) / W;
    const bool rows = layout & (Q_CM | O_CM);
    v8 *kt = static_cast<v8 *>(std::aligned_alloc(sizeof(v8), sizeof(v8) * nvec * d));
    v8 *vt = static_cast<v8 *>(std::aligned_alloc(sizeof(v8), sizeof(v8) * nvec * d));
    float *scratch = rows ? static_cast<float *>(std::malloc(sizeof(float) * 2 * (size_t)lq * d)) : nullptr;
    if (!kt || !vt || (rows && !scratch)) { std::free(kt); std::free(vt); std::free(scratch); return 2; }
    float *qr = scratch, *orow = scratch ? scratch + (size_t)lq * d : nullptr;
#if defined(__SSE__)
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040);  // flush and read subnormals as zero: they cost hundreds of cycles
#endif
    switch (d) {
        case 4: attend<4>(q, k, v, o, b, lq, lk, d, scale, layout, kt, vt, nvec, qr, orow); break;
        case 8: attend<8>(q, k, v, o, b, lq, lk, d, scale, layout, kt, vt, nvec, qr, orow); break;
        case 16: attend<16>(q, k, v, o, b, lq, lk, d, scale, layout, kt, vt, nvec, qr, orow); break;
        default: attend<0>(q, k, v, o, b, lq, lk, d, scale, layout, kt, vt, nvec, qr, orow); break;
    }
#if defined(__SSE__)
    _mm_setcsr(csr);
#endif
    std::free(kt); std::free(vt); std::free(scratch);
    return 0;
}

// Every tensor row-major, (B, L, D).
int tsi_saliency_attention(const float *q, const float *k, const float *v, float *o,
                           int b, int lq, int lk, int d, float scale) {
    return tsi_saliency_attention_layout(q, k, v, o, b, lq, lk, d, scale, 0);
}

}  // extern "C"
