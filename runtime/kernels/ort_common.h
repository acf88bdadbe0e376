// What the tsi.cpu onnxruntime operations (ort_saliency_op.cpp, ort_cross_temporal_op.cpp) share:
// the API table onnxruntime handed to RegisterCustomOps, status helpers, a tensor's shape, and the
// operation table's fields that do not differ between them.
#pragma once
#include <onnxruntime_c_api.h>

#include <climits>
#include <cstdint>
#include <vector>

namespace tsi_ort {

extern const OrtApi *api;  // set by RegisterCustomOps (ort_saliency_op.cpp) before any kernel exists

// The first failing status of a chain of API calls, or nullptr.
#define TSI_TRY(call)                            \
    do {                                         \
        OrtStatus *status_ = (call);             \
        if (status_ != nullptr) return status_;  \
    } while (0)

inline OrtStatus *fail(const char *message) { return api->CreateStatus(ORT_INVALID_ARGUMENT, message); }

inline OrtStatus *dims_of(const OrtValue *value, std::vector<int64_t> &dims, ONNXTensorElementDataType &type) {
    OrtTensorTypeAndShapeInfo *info = nullptr;
    TSI_TRY(api->GetTensorTypeAndShape(value, &info));
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

// An operation's three inputs: their shapes and float32 data (only read: the API has no const
// accessor).
struct Inputs {
    std::vector<int64_t> dims[3];
    const float *data[3];
};

// Reads the three inputs of a run; fails with `not_float` where one is not float32.
inline OrtStatus *float_inputs(OrtKernelContext *context, Inputs &in, const char *not_float) {
    for (size_t i = 0; i < 3; i++) {
        ONNXTensorElementDataType type;
        const OrtValue *value = nullptr;
        TSI_TRY(api->KernelContext_GetInput(context, i, &value));
        TSI_TRY(dims_of(value, in.dims[i], type));
        if (type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) return fail(not_float);
        void *data = nullptr;
        TSI_TRY(api->GetTensorMutableData(const_cast<OrtValue *>(value), &data));
        in.data[i] = static_cast<const float *>(data);
    }
    return nullptr;
}

// An operation of three float32 inputs and one float32 output on the CPU provider, every one
// required: Name its op type, Attributes what create makes of its node's attributes (deleted with
// the kernel), compute its run. No shape function: whether the input's type-and-shape info it is
// given must be released differs between onnxruntime versions (1.32 owns it and frees it again); the
// graph's own shapes serve.
template <const char *(*Name)(), typename Attributes>
OrtCustomOp float_op(OrtStatus *(*create)(const OrtCustomOp *, const OrtApi *, const OrtKernelInfo *, void **),
                     OrtStatus *(*compute)(void *, OrtKernelContext *)) {
    OrtCustomOp op{};
    op.version = ORT_API_VERSION;
    op.GetName = [](const OrtCustomOp *) { return Name(); };
    op.GetExecutionProviderType = [](const OrtCustomOp *) { return "CPUExecutionProvider"; };
    op.GetInputType = [](const OrtCustomOp *, size_t) { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; };
    op.GetInputTypeCount = [](const OrtCustomOp *) -> size_t { return 3; };
    op.GetOutputType = [](const OrtCustomOp *, size_t) { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; };
    op.GetOutputTypeCount = [](const OrtCustomOp *) -> size_t { return 1; };
    op.KernelDestroy = [](void *kernel) { delete static_cast<Attributes *>(kernel); };
    op.GetInputCharacteristic = [](const OrtCustomOp *, size_t) { return INPUT_OUTPUT_REQUIRED; };
    op.GetOutputCharacteristic = [](const OrtCustomOp *, size_t) { return INPUT_OUTPUT_REQUIRED; };
    op.GetInputMemoryType = [](const OrtCustomOp *, size_t) { return OrtMemTypeDefault; };
    op.GetVariadicInputMinArity = [](const OrtCustomOp *) { return 1; };
    op.GetVariadicInputHomogeneity = [](const OrtCustomOp *) { return 1; };
    op.GetVariadicOutputMinArity = [](const OrtCustomOp *) { return 1; };
    op.GetVariadicOutputHomogeneity = [](const OrtCustomOp *) { return 1; };
    op.CreateKernelV2 = create;
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

// The cross-temporal operation's table (ort_cross_temporal_op.cpp).
const OrtCustomOp *cross_temporal_op();

}  // namespace tsi_ort
