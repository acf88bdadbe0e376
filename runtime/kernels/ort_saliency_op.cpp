// onnxruntime's custom operation tsi.cpu::SaliencyAttention: softmax(q k^T) v on the kernel of
// saliency_attention.cpp (built into the same library), so the attention runs inside the session
// and onnxruntime keeps its blocked layout around it: out = softmax(q k^T * scale) v. Inputs q, k,
// v, output out, float32; the attribute ``layout`` (the kernel's bits, default K_CM: k given as the
// MatMul's own k^T) says which are channel-major, (B, D, L), and which (B, L, D); ``scale`` (default
// 1) multiplies the scores.
// Built against onnxruntime's C API header only (onnxruntime_c_api.h, no library is linked):
// onnxruntime hands the API table to RegisterCustomOps when a session's options load the library
// (SessionOptions.register_custom_ops_library), and the table of an older API version stays valid in
// every later onnxruntime. Built and loaded by runtime/kernels/ort_op.py.
#include "ort_common.h"

extern "C" int tsi_saliency_attention_layout(const float *q, const float *k, const float *v, float *o, int b,
                                             int lq, int lk, int d, float scale, int layout);

extern "C" {
// The operations' domain and the attention's name, read by ort_op.py for the graph's nodes and opset
// import (ort_cross_temporal_op.cpp names its own).
const char *tsi_ort_op_domain() { return "tsi.cpu"; }
const char *tsi_ort_op_name() { return "SaliencyAttention"; }
}

namespace tsi_ort {

const OrtApi *api = nullptr;

namespace {

constexpr int64_t Q_CM = 1, K_CM = 2, V_CM = 4, O_CM = 8, ALL = 15;  // saliency_attention.cpp's bits

struct Attributes {
    int64_t layout;
    float scale;
};

OrtStatus *compute(void *kernel, OrtKernelContext *context) {
    const Attributes &at = *static_cast<const Attributes *>(kernel);
    const int64_t layout = at.layout;
    Inputs in;
    TSI_TRY(float_inputs(context, in, "SaliencyAttention takes float32 q, k and v of rank 3"));
    const std::vector<int64_t> *dims = in.dims;
    for (int i = 0; i < 3; i++)
        if (dims[i].size() != 3) return fail("SaliencyAttention takes float32 q, k and v of rank 3");
    // (B, L, D) of each, whichever way it is stored
    auto shape = [&](int i, int64_t bit) {
        const bool cm = layout & bit;
        return std::vector<int64_t>{dims[i][0], dims[i][cm ? 2 : 1], dims[i][cm ? 1 : 2]};
    };
    const std::vector<int64_t> q = shape(0, Q_CM), k = shape(1, K_CM), v = shape(2, V_CM);
    const int64_t b = q[0], lq = q[1], d = q[2], lk = k[1];
    if (k[0] != b || k[2] != d || v != k)
        return fail("SaliencyAttention: q (B, Lq, D), k and v (B, Lk, D) do not match");
    if (b * lq * d > INT_MAX || b * lk * d > INT_MAX) return fail("SaliencyAttention: tensors too large");
    const int64_t out_dims[3] = {b, layout & O_CM ? d : lq, layout & O_CM ? lq : d};
    OrtValue *out = nullptr;
    TSI_TRY(api->KernelContext_GetOutput(context, 0, out_dims, 3, &out));
    void *data = nullptr;
    TSI_TRY(api->GetTensorMutableData(out, &data));
    const int code = tsi_saliency_attention_layout(in.data[0], in.data[1], in.data[2], static_cast<float *>(data),
                                                   static_cast<int>(b), static_cast<int>(lq), static_cast<int>(lk),
                                                   static_cast<int>(d), at.scale, static_cast<int>(layout));
    if (code == 1) return fail("SaliencyAttention: head size outside 1..64");
    if (code != 0) return api->CreateStatus(ORT_RUNTIME_EXCEPTION, "SaliencyAttention: out of memory");
    return nullptr;
}

OrtStatus *create(const OrtCustomOp *, const OrtApi *, const OrtKernelInfo *info, void **kernel) {
    Attributes at{K_CM, 1.0f};
    OrtStatus *s = api->KernelInfoGetAttribute_int64(info, "layout", &at.layout);
    if (s != nullptr) {  // absent: the default
        api->ReleaseStatus(s);
        at.layout = K_CM;
    }
    s = api->KernelInfoGetAttribute_float(info, "scale", &at.scale);
    if (s != nullptr) {
        api->ReleaseStatus(s);
        at.scale = 1.0f;
    }
    if (at.layout < 0 || at.layout > ALL)
        return fail("SaliencyAttention: layout must be a combination of 1, 2, 4 and 8");
    *kernel = new Attributes(at);
    return nullptr;
}

const OrtCustomOp op = float_op<tsi_ort_op_name, Attributes>(create, compute);

}  // namespace
}  // namespace tsi_ort

extern "C" {

OrtStatus *ORT_API_CALL RegisterCustomOps(OrtSessionOptions *options, const OrtApiBase *base) {
    const OrtApi *given = base->GetApi(ORT_API_VERSION);
    if (given == nullptr) {  // an onnxruntime older than the header: its first API table can still say so
        const OrtApi *first = base->GetApi(1);
        return first ? first->CreateStatus(ORT_FAIL, "this onnxruntime is older than the header the tsi.cpu "
                                           "operations were built with") : nullptr;
    }
    const OrtApi *api = tsi_ort::api = given;
    // a domain per session options: onnxruntime's Python binding releases the domains of options it drops
    OrtCustomOpDomain *domain = nullptr;
    TSI_TRY(api->CreateCustomOpDomain(tsi_ort_op_domain(), &domain));
    OrtStatus *s = api->CustomOpDomain_Add(domain, &tsi_ort::op);
    if (s == nullptr) s = api->CustomOpDomain_Add(domain, tsi_ort::cross_temporal_op());
    if (s == nullptr) s = api->AddCustomOpDomain(options, domain);
    if (s != nullptr) api->ReleaseCustomOpDomain(domain);
    return s;
}

}  // extern "C"
