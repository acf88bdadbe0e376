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

// dst = TConv(src) for one sample's group: src's frames `sf` floats apart, dst's `df`, channels hw apart.
void tconv(const float *src, size_t sf, float *dst, size_t df, const float *w, int t, int c, int hw) {
    for (int ch = 0; ch < c; ch++) {
        const float w0 = w[3 * ch], w1 = w[3 * ch + 1], w2 = w[3 * ch + 2];
        for (int f = 0; f < t; f++) {
            const float *__restrict cur = src + f * sf + (size_t)ch * hw;
            float *__restrict o = dst + f * df + (size_t)ch * hw;
            const float *__restrict before = cur - sf, *__restrict after = cur + sf;
            if (f > 0 && f + 1 < t)
                for (int i = 0; i < hw; i++) o[i] = w0 * before[i] + w1 * cur[i] + w2 * after[i];
            else if (f > 0)
                for (int i = 0; i < hw; i++) o[i] = w0 * before[i] + w1 * cur[i];
            else if (f + 1 < t)
                for (int i = 0; i < hw; i++) o[i] = w1 * cur[i] + w2 * after[i];
            else
                for (int i = 0; i < hw; i++) o[i] = w1 * cur[i];
        }
    }
}

// mix = a x + (1 - a) prev for one sample's group, a from CI's FC (2c rows of c weights and a bias);
// x's and prev's frames `frame` floats apart, mix's c * hw.
void blend(const float *x, const float *prev, size_t frame, float *mix, const float *fc, int t, int c, int hw,
           float *pooled, float *alpha) {
    for (int f = 0; f < t; f++) {
        for (int ch = 0; ch < c; ch++) {
            const float *__restrict a = x + f * frame + (size_t)ch * hw, *__restrict b = prev + f * frame + (size_t)ch * hw;
            float s = 0.0f;
            for (int i = 0; i < hw; i++) s += a[i] + b[i];
            pooled[ch] = s / hw;
        }
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
    for (int f = 0; f < t; f++)
        for (int ch = 0; ch < c; ch++) {
            const float a = alpha[f * c + ch], na = 1.0f - a;
            const size_t at = f * frame + (size_t)ch * hw;
            const float *__restrict xa = x + at, *__restrict pa = prev + at;
            float *__restrict o = mix + (size_t)(f * c + ch) * hw;
            for (int i = 0; i < hw; i++) o[i] = a * xa[i] + na * pa[i];
        }
}

struct Attributes {
    int64_t frames;
};

OrtStatus *compute(void *kernel, OrtKernelContext *context) {
    const int64_t t = static_cast<const Attributes *>(kernel)->frames;
    const OrtValue *in[3];
    std::vector<int64_t> dims[3];
    for (size_t i = 0; i < 3; i++) {
        ONNXTensorElementDataType type;
        TSI_TRY(api->KernelContext_GetInput(context, i, &in[i]));
        TSI_TRY(dims_of(in[i], dims[i], type));
        if (type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) return fail("CrossTemporal takes float32 tensors");
    }
    const std::vector<int64_t> &xd = dims[0], &td = dims[1], &cd = dims[2];
    if (xd.size() != 4 || td.size() != 3 || td[2] != 3 || cd.size() != 3)
        return fail("CrossTemporal takes x (N*T, G*c, H, W), tconv (G-1, c, 3) and ci (G-2, 2c, c+1)");
    const int64_t groups = td[0] + 1, c = td[1], hw = xd[2] * xd[3];
    if (groups < 2 || cd[0] != groups - 2 || cd[1] != 2 * c || cd[2] != c + 1 || xd[1] != groups * c)
        return fail("CrossTemporal: x's channels, tconv (G-1, c, 3) and ci (G-2, 2c, c+1) do not match");
    if (xd[0] % t != 0) return fail("CrossTemporal: x's first axis is not a whole number of clips of `frames`");
    if (xd[0] * xd[1] * hw > INT_MAX) return fail("CrossTemporal: x too large");
    OrtValue *out = nullptr;
    TSI_TRY(api->KernelContext_GetOutput(context, 0, xd.data(), xd.size(), &out));
    void *data[4];  // x, tconv, ci, out (inputs are only read: the API has no const accessor)
    for (int i = 0; i < 3; i++) TSI_TRY(api->GetTensorMutableData(const_cast<OrtValue *>(in[i]), &data[i]));
    TSI_TRY(api->GetTensorMutableData(out, &data[3]));
    const float *x = static_cast<const float *>(data[0]), *tw = static_cast<const float *>(data[1]),
                *fc = static_cast<const float *>(data[2]);
    float *o = static_cast<float *>(data[3]);
    const size_t frame = (size_t)xd[1] * hw, group = (size_t)c * hw;
    // a group's blend, its FC's pooled input and a per frame and channel; kept by the thread from call
    // to call (a fresh allocation of megabytes is fresh pages to fault in every call)
    thread_local std::vector<float> scratch;
    const size_t need = (size_t)t * group + c + t * c;
    if (scratch.size() < need) {
        try {
            scratch.resize(need);
        } catch (const std::bad_alloc &) {
            return api->CreateStatus(ORT_RUNTIME_EXCEPTION, "CrossTemporal: out of memory");
        }
    }
    float *mix = scratch.data(), *pooled = mix + (size_t)t * group, *alpha = pooled + c;
    for (int64_t n = 0; n < xd[0] / t; n++) {
        const float *xn = x + (size_t)n * t * frame;
        float *on = o + (size_t)n * t * frame;
        for (int64_t f = 0; f < t; f++) std::memcpy(on + f * frame, xn + f * frame, sizeof(float) * group);
        tconv(xn + group, frame, on + group, frame, tw, t, c, hw);
        for (int64_t g = 2; g < groups; g++) {
            blend(xn + g * group, on + (g - 1) * group, frame, mix, fc + (g - 2) * 2 * c * (c + 1), t, c, hw, pooled, alpha);
            tconv(mix, group, on + g * group, frame, tw + (g - 1) * c * 3, t, c, hw);
        }
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

OrtCustomOp make_op() {
    OrtCustomOp op = float_op();
    op.GetName = [](const OrtCustomOp *) { return tsi_ort_cti_name(); };
    op.GetInputTypeCount = [](const OrtCustomOp *) -> size_t { return 3; };
    op.KernelDestroy = [](void *kernel) { delete static_cast<Attributes *>(kernel); };
    op.CreateKernelV2 = create;
    op.KernelComputeV2 = compute;
    return op;
}

const OrtCustomOp op = make_op();

}  // namespace

const OrtCustomOp *cross_temporal_op() { return &op; }

}  // namespace tsi_ort
