// TensorRT IPluginV3 wrapper of the fused saliency-attention kernel (saliency_attention.h).
//
//   op type, namespace, version: plugin_identity.h ("SaliencyAttention", "tsi", "1")
//   inputs  q, k, v: (B, L, D), all kFLOAT or all kHALF, LINEAR; D = 1..64
//   output  out:     shape and type of q, out = softmax(q k^T * scale) v
//   field   scale:   kFLOAT32, default 1.0 (the exported graph pre-scales q, so 1.0 is the norm)
//
// Written against the TensorRT 10.x plugin API (IPluginV3 + IPluginV3OneCore/Build/Runtime, creator
// IPluginCreatorV3One), which JetPack 6 (TensorRT 10.3) and desktop TensorRT 10/11 share. Only the
// methods present since 10.0 are overridden. enqueue() calls the C launcher on TensorRT's stream:
// no allocation, no synchronisation, no workspace.
#ifndef TSI_SALIENCY_ATTENTION_PLUGIN_H
#define TSI_SALIENCY_ATTENTION_PLUGIN_H

#include "plugin_identity.h"

#include <NvInferRuntime.h>

#include <cstdint>
#include <vector>

namespace tsi
{

constexpr char const* kSaliencyAttentionName = TSI_PLUGIN_NAME;
constexpr char const* kSaliencyAttentionVersion = TSI_PLUGIN_VERSION;
constexpr char const* kSaliencyAttentionNamespace = TSI_PLUGIN_NAMESPACE;

class SaliencyAttentionPlugin final : public nvinfer1::IPluginV3,
                                      public nvinfer1::IPluginV3OneCore,
                                      public nvinfer1::IPluginV3OneBuild,
                                      public nvinfer1::IPluginV3OneRuntime
{
public:
    explicit SaliencyAttentionPlugin(float scale);
    SaliencyAttentionPlugin(SaliencyAttentionPlugin const&) = delete;  // mFields points into this object
    SaliencyAttentionPlugin& operator=(SaliencyAttentionPlugin const&) = delete;
    ~SaliencyAttentionPlugin() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

    float scale() const noexcept
    {
        return mScale;
    }

private:
    float mScale;
    std::vector<nvinfer1::PluginField> mFields;  // {"scale" -> &mScale}
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

class SaliencyAttentionPluginCreator final : public nvinfer1::IPluginCreatorV3One
{
public:
    SaliencyAttentionPluginCreator();
    ~SaliencyAttentionPluginCreator() override = default;

    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;

private:
    std::vector<nvinfer1::PluginField> mFields;
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

} // namespace tsi

#endif // TSI_SALIENCY_ATTENTION_PLUGIN_H
