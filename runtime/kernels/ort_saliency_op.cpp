// onnxruntime's custom operation tsi.cpu::SaliencyAttention: softmax(q k^T) v on the kernel of
// saliency_attention.cpp (built into the same library), so the attention runs inside the session
// and onnxruntime keeps its blocked layout around it. Inputs q (B, Lq, D), k^T (B, D, Lk) -- the
// MatMul's own second input -- and v (B, Lk, D), float32; output (B, Lq, D).
// Built against onnxruntime's C API header only (onnxruntime_c_api.h, no library is linked):
// onnxruntime hands the API table to RegisterCustomOps when a session's options load the library
// (SessionOptions.register_custom_ops_library), and the table of an older API version stays valid in
// every later onnxruntime. Built and loaded by runtime/kernels/ort_op.py.
#include <onnxruntime_c_api.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <vector>

extern "C" int tsi_saliency_attention(const float *q, const float *k, const float *v, float *o, int b, int lq,
                                      int lk, int d, float scale);

extern "C" {
// The operation's domain and name, read by ort_op.py for the graph's nodes and opset import.
const char *tsi_ort_op_domain() { return "tsi.cpu"; }
const char *tsi_ort_op_name() { return "SaliencyAttention"; }
}

namespace {

const OrtApi *api = nullptr;

// The first failing status of a chain of API calls, or nullptr.
#define TRY(call)                           \
    do {                                    \
        OrtStatus *status_ = (call);        \
        if (status_ != nullptr) return status_; \
    } while (0)

OrtStatus *fail(const char *message) { return api->CreateStatus(ORT_INVALID_ARGUMENT, message); }

OrtStatus *dims_of(const OrtValue *value, std::vector<int64_t> &dims, ONNXTensorElementDataType &type) {
    OrtTensorTypeAndShapeInfo *info = nullptr;
    TRY(api->GetTensorTypeAndShape(value, &info));
    size_t n = 0;
    OrtStatus *s = api->GetDimensionsCount(info, &n);
    if (s == nullptr) {
        dims.resize(n);
        s = api->GetDimensions(info, dims.data(), n);
    }
    if (s == nullptr) s = api->GetTensorElementType(info, &type);
    api->ReleaseTensorTypeAndShapeInfo(info);
    return s;
}

OrtStatus *compute(void *, OrtKernelContext *context) {
    const OrtValue *in[3];
    std::vector<int64_t> dims[3];
    for (size_t i = 0; i < 3; i++) {
        ONNXTensorElementDataType type;
        TRY(api->KernelContext_GetInput(context, i, &in[i]));
        TRY(dims_of(in[i], dims[i], type));
        if (type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || dims[i].size() != 3)
            return fail("SaliencyAttention takes float32 q (B, Lq, D), k^T (B, D, Lk) and v (B, Lk, D)");
    }
    const int64_t b = dims[0][0], lq = dims[0][1], d = dims[0][2], lk = dims[1][2];
    if (dims[1][0] != b || dims[1][1] != d || dims[2][0] != b || dims[2][1] != lk || dims[2][2] != d)
        return fail("SaliencyAttention: q (B, Lq, D), k^T (B, D, Lk) and v (B, Lk, D) do not match");
    if (b * lq * d > INT_MAX || b * lk * d > INT_MAX) return fail("SaliencyAttention: tensors too large");
    OrtValue *out = nullptr;
    TRY(api->KernelContext_GetOutput(context, 0, dims[0].data(), 3, &out));
    void *data[4];  // q, k^T, v, out (inputs are only read: the API has no const accessor)
    for (int i = 0; i < 3; i++) TRY(api->GetTensorMutableData(const_cast<OrtValue *>(in[i]), &data[i]));
    TRY(api->GetTensorMutableData(out, &data[3]));
    const float *q = static_cast<const float *>(data[0]), *kt = static_cast<const float *>(data[1]),
                *v = static_cast<const float *>(data[2]);
    float *o = static_cast<float *>(data[3]);
    std::vector<float> k(static_cast<size_t>(b * lk * d));  // the kernel reads k (B, Lk, D)
    for (int64_t n = 0; n < b; n++)
        for (int64_t c = 0; c < d; c++)
            for (int64_t j = 0; j < lk; j++) k[(n * lk + j) * d + c] = kt[(n * d + c) * lk + j];
    const int code = tsi_saliency_attention(q, k.data(), v, o, static_cast<int>(b), static_cast<int>(lq),
                                            static_cast<int>(lk), static_cast<int>(d), 1.0f);
    if (code == 1) return fail("SaliencyAttention: head size outside 1..64");
    if (code != 0) return api->CreateStatus(ORT_RUNTIME_EXCEPTION, "SaliencyAttention: out of memory");
    return nullptr;
}

OrtStatus *infer_shape(const OrtCustomOp *, OrtShapeInferContext *context) {
    OrtTensorTypeAndShapeInfo *info = nullptr;
    TRY(api->ShapeInferContext_GetInputTypeShape(context, 0, &info));
    return api->ShapeInferContext_SetOutputTypeShape(context, 0, info);
}

OrtCustomOp make_op() {
    OrtCustomOp op{};
    op.version = ORT_API_VERSION;
    op.GetName = [](const OrtCustomOp *) { return tsi_ort_op_name(); };
    op.GetExecutionProviderType = [](const OrtCustomOp *) { return "CPUExecutionProvider"; };
    op.GetInputType = [](const OrtCustomOp *, size_t) { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; };
    op.GetInputTypeCount = [](const OrtCustomOp *) -> size_t { return 3; };
    op.GetOutputType = [](const OrtCustomOp *, size_t) { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; };
    op.GetOutputTypeCount = [](const OrtCustomOp *) -> size_t { return 1; };
    op.KernelDestroy = [](void *) {};
    op.GetInputCharacteristic = [](const OrtCustomOp *, size_t) { return INPUT_OUTPUT_REQUIRED; };
    op.GetOutputCharacteristic = [](const OrtCustomOp *, size_t) { return INPUT_OUTPUT_REQUIRED; };
    op.GetInputMemoryType = [](const OrtCustomOp *, size_t) { return OrtMemTypeDefault; };
    op.GetVariadicInputMinArity = [](const OrtCustomOp *) { return 1; };
    op.GetVariadicInputHomogeneity = [](const OrtCustomOp *) { return 1; };
    op.GetVariadicOutputMinArity = [](const OrtCustomOp *) { return 1; };
    op.GetVariadicOutputHomogeneity = [](const OrtCustomOp *) { return 1; };
    op.CreateKernelV2 = [](const OrtCustomOp *, const OrtApi *, const OrtKernelInfo *, void **kernel) -> OrtStatus * {
        *kernel = nullptr;  // stateless
        return nullptr;
    };
    op.KernelComputeV2 = compute;
    op.InferOutputShapeFn = nullptr;
    op.GetStartVersion = [](const OrtCustomOp *) { return 1; };
    op.GetEndVersion = [](const OrtCustomOp *) { return INT_MAX; };
    op.GetMayInplace = [](int **, int **) -> size_t { return 0; };
    op.ReleaseMayInplace = [](int *, int *) {};
    op.GetAliasMap = [](int **, int **) -> size_t { return 0; };
    op.ReleaseAliasMap = [](int *, int *) {};
    return op;
}

const OrtCustomOp op = make_op();

}  // namespace

extern "C" {

OrtStatus *ORT_API_CALL RegisterCustomOps(OrtSessionOptions *options, const OrtApiBase *base) {
    const OrtApi *given = base->GetApi(ORT_API_VERSION);
    if (given == nullptr) {  // an onnxruntime older than the header: its first API table can still say so
        const OrtApi *first = base->GetApi(1);
        return first ? first->CreateStatus(ORT_FAIL, "this onnxruntime is older than the header the tsi.cpu "
                                           "operations were built with") : nullptr;
    }
    api = given;
    // a domain per session options: onnxruntime's Python binding releases the domains of options it drops
    OrtCustomOpDomain *domain = nullptr;
    TRY(api->CreateCustomOpDomain(tsi_ort_op_domain(), &domain));
    OrtStatus *s = api->CustomOpDomain_Add(domain, &op);
    if (s == nullptr) s = api->AddCustomOpDomain(options, domain);
    if (s != nullptr) api->ReleaseCustomOpDomain(domain);
    return s;
}

}  // extern "C"
