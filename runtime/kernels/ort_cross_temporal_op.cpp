// onnxruntime's custom operation tsi.cpu::CrossTemporal: a whole CTI unit (Sec. 3.3, Eq. 7-9;
// tsi/modules/cti.py, the clip form: non-causal, cross-perception) in one pass over its groups,
// where onnxruntime runs a Split, per group a Reshape-Transpose-Conv-Transpose-Reshape (the temporal
// conv on the (N, C, T, HW) view), the cross-perception's pooling, FC, softmax and blend, and a
// Concat, each a pass through memory and, around the convs, a reorder out of and back into its
// blocked layout.
//   x      (N*T, G*c, H, W): the unit's input, NCHW
//   tconv  (G-1, c, 3):      TConv_2..G's depthwise weights, tap k reading frame t + k - 1 (zero
//                            outside the clip)
//   ci     (G-2, 2c, c+1):   CI's FC for groups 3..G, weight columns then bias
//   frames (attribute):      T
// out (N*T, G*c, H, W): T_1 = X_1, T_2 = TConv_2(X_2), T_g = TConv_g(a X_g + (1-a) T_{g-1}) with a
// the first of softmax over the pair FC(GAP(T_{g-1} + X_g)), per frame and channel.
#include "ort_common.h"

#include <cmath>
#include <cstring>
#include <new>

extern "C" {
const char *tsi_ort_cti_name() { return "CrossTemporal"; }
}

namespace tsi_ort {
namespace {

constexpr int LANES = 16;  // partial sums: a float sum vectorises only as separate lanes

inline float lane_sum(const float *acc) {
    float s = 0.0f;
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

inline float sum_of(const float *__restrict a, int n) {
    float acc[LANES] = {};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += a[i + l];
    float s = lane_sum(acc);
    for (; i < n; i++) s += a[i];
    return s;
}

// o = w0 before + w1 cur + w2 after (a missing frame, nullptr, is zero); returns the sum of o.
inline float taps(const float *__restrict before, const float *__restrict cur, const float *__restrict after,
                  float *__restrict o, float w0, float w1, float w2, int hw) {
    if (before && after)
        for (int i = 0; i < hw; i++) o[i] = w0 * before[i] + w1 * cur[i] + w2 * after[i];
    else if (before)
        for (int i = 0; i < hw; i++) o[i] = w0 * before[i] + w1 * cur[i];
    else if (after)
        for (int i = 0; i < hw; i++) o[i] = w1 * cur[i] + w2 * after[i];
    else
        for (int i = 0; i < hw; i++) o[i] = w1 * cur[i];
    return sum_of(o, hw);
}

// One sample's group, frames `frame` floats apart and channels hw apart: dst = TConv(src), and the
// sum of each of dst's (frame, channel) maps in sums (the next group's pooling reads them).
void tconv(const float *src, float *dst, size_t frame, const float *w, int t, int c, int hw, float *sums) {
    for (int ch = 0; ch < c; ch++)
        for (int f = 0; f < t; f++) {
            const float *cur = src + f * frame + (size_t)ch * hw;
            sums[f * c + ch] = taps(f > 0 ? cur - frame : nullptr, cur, f + 1 < t ? cur + frame : nullptr,
                                    dst + f * frame + (size_t)ch * hw, w[3 * ch], w[3 * ch + 1], w[3 * ch + 2], hw);
        }
}

// dst = TConv(a x + (1 - a) prev) for one sample's group, a from CI's FC (2c rows of c weights and a
// bias) of the pooled prev + x (prev's map sums given in sums, replaced by dst's). The blend is made
// a frame at a time into three rolling maps (rows, 3 hw floats) as the taps need it, never whole.
void blend_tconv(const float *x, const float *prev, float *dst, size_t frame, const float *fc, const float *w, int t,
                 int c, int hw, float *sums, float *pooled, float *alpha, float *rows) {
    for (int f = 0; f < t; f++) {
        for (int ch = 0; ch < c; ch++)
            pooled[ch] = (sums[f * c + ch] + sum_of(x + f * frame + (size_t)ch * hw, hw)) / hw;
        for (int ch = 0; ch < c; ch++) {
            float l[2];
            for (int k = 0; k < 2; k++) {
                const float *row = fc + (size_t)(k * c + ch) * (c + 1);
                float s = row[c];
                for (int j = 0; j < c; j++) s += row[j] * pooled[j];
                l[k] = s;
            }
            const float m = l[0] > l[1] ? l[0] : l[1], e0 = std::exp(l[0] - m), e1 = std::exp(l[1] - m);
            alpha[f * c + ch] = e0 / (e0 + e1);
        }
    }
    for (int ch = 0; ch < c; ch++) {
        auto blend = [&](int f) {  // frame f's blended map, in row f % 3
            const float a = alpha[f * c + ch], na = 1.0f - a;
            const size_t at = f * frame + (size_t)ch * hw;
            const float *__restrict xa = x + at, *__restrict pa = prev + at;
            float *__restrict o = rows + (size_t)(f % 3) * hw;
            for (int i = 0; i < hw; i++) o[i] = a * xa[i] + na * pa[i];
        };
        blend(0);
        if (t > 1) blend(1);
        for (int f = 0; f < t; f++) {
            const float *cur = rows + (size_t)(f % 3) * hw;
            sums[f * c + ch] = taps(f > 0 ? rows + (size_t)((f + 2) % 3) * hw : nullptr, cur,
                                    f + 1 < t ? rows + (size_t)((f + 1) % 3) * hw : nullptr,
                                    dst + f * frame + (size_t)ch * hw, w[3 * ch], w[3 * ch + 1], w[3 * ch + 2], hw);
            if (f + 2 < t) blend(f + 2);  // into the row frame f - 1 had
        }
    }
}

struct Attributes {
    int64_t frames;
};

OrtStatus *compute(void *kernel, OrtKernelContext *context) {
    const int64_t t = static_cast<const Attributes *>(kernel)->frames;
    Inputs in;
    TSI_TRY(float_inputs(context, in, "CrossTemporal takes float32 tensors"));
    const std::vector<int64_t> &xd = in.dims[0], &td = in.dims[1], &cd = in.dims[2];
    if (xd.size() != 4 || td.size() != 3 || td[2] != 3 || cd.size() != 3)
        return fail("CrossTemporal takes x (N*T, G*c, H, W), tconv (G-1, c, 3) and ci (G-2, 2c, c+1)");
    const int64_t groups = td[0] + 1, c = td[1], hw = xd[2] * xd[3];
    if (groups < 2 || cd[0] != groups - 2 || cd[1] != 2 * c || cd[2] != c + 1 || xd[1] != groups * c)
        return fail("CrossTemporal: x's channels, tconv (G-1, c, 3) and ci (G-2, 2c, c+1) do not match");
    if (xd[0] % t != 0) return fail("CrossTemporal: x's first axis is not a whole number of clips of `frames`");
    if (xd[0] * xd[1] * hw > INT_MAX) return fail("CrossTemporal: x too large");
    OrtValue *out = nullptr;
    TSI_TRY(api->KernelContext_GetOutput(context, 0, xd.data(), xd.size(), &out));
    void *data = nullptr;
    TSI_TRY(api->GetTensorMutableData(out, &data));
    const float *x = in.data[0], *tw = in.data[1], *fc = in.data[2];
    float *o = static_cast<float *>(data);
    const size_t frame = (size_t)xd[1] * hw, group = (size_t)c * hw;
    // three blended maps, the FC's pooled input, a and the map sums per frame and channel; kept by
    // the thread from call to call
    thread_local std::vector<float> scratch;
    const size_t need = (size_t)3 * hw + c + 2 * t * c;
    if (scratch.size() < need) {
        try {
            scratch.resize(need);
        } catch (const std::bad_alloc &) {
            return api->CreateStatus(ORT_RUNTIME_EXCEPTION, "CrossTemporal: out of memory");
        }
    }
    float *rows = scratch.data(), *pooled = rows + (size_t)3 * hw, *alpha = pooled + c, *sums = alpha + t * c;
    for (int64_t n = 0; n < xd[0] / t; n++) {
        const float *xn = x + (size_t)n * t * frame;
        float *on = o + (size_t)n * t * frame;
        for (int64_t f = 0; f < t; f++) std::memcpy(on + f * frame, xn + f * frame, sizeof(float) * group);
        tconv(xn + group, on + group, frame, tw, t, c, hw, sums);
        for (int64_t g = 2; g < groups; g++)
            blend_tconv(xn + g * group, on + (g - 1) * group, on + g * group, frame, fc + (g - 2) * 2 * c * (c + 1),
                        tw + (g - 1) * c * 3, t, c, hw, sums, pooled, alpha, rows);
    }
    return nullptr;
}

OrtStatus *create(const OrtCustomOp *, const OrtApi *, const OrtKernelInfo *info, void **kernel) {
    Attributes at{0};
    OrtStatus *s = api->KernelInfoGetAttribute_int64(info, "frames", &at.frames);
    if (s != nullptr) {
        api->ReleaseStatus(s);
        return fail("CrossTemporal needs its attribute frames (T)");
    }
    if (at.frames < 1) return fail("CrossTemporal: frames must be at least 1");
    *kernel = new Attributes(at);
    return nullptr;
}

const OrtCustomOp op = float_op<tsi_ort_cti_name, Attributes>(create, compute);

}  // namespace

const OrtCustomOp *cross_temporal_op() { return &op; }

}  // namespace tsi_ort
