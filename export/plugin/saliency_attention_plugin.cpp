// TensorRT IPluginV3 "tsi::SaliencyAttention" v1: see saliency_attention_plugin.h.
//
// Registration under namespace "tsi" however the library is loaded, and never twice:
//  * static: the creator registers itself under its namespace when the library is loaded, e.g. by
//    ctypes.CDLL("libtsi_plugins.so") before the ONNX parser runs, or trtexec --staticPlugins
//    (compile definition TSI_PLUGIN_STATIC_REGISTRATION=1, the CMake default);
//  * dynamic: IPluginRegistry::loadLibrary / trt.get_plugin_registry().load_library / trtexec
//    --dynamicPlugins call the exported getCreators() (which withdraws the static registration
//    first) and setLoggerFinder().

#include "saliency_attention_plugin.h"

#include "saliency_attention.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#ifndef TSI_PLUGIN_STATIC_REGISTRATION
#define TSI_PLUGIN_STATIC_REGISTRATION 1
#endif

using namespace nvinfer1;

namespace tsi
{
namespace
{

ILoggerFinder* gLoggerFinder = nullptr;

// Errors go to TensorRT's logger when the library was loaded through the plugin registry, else stderr.
void logError(std::string const& msg) noexcept
{
    try
    {
        std::string const line = std::string("[" TSI_PLUGIN_NAMESPACE "::" TSI_PLUGIN_NAME "] ") + msg;
        ILogger* logger = gLoggerFinder != nullptr ? gLoggerFinder->findLogger() : nullptr;
        if (logger != nullptr)
        {
            logger->log(ILogger::Severity::kERROR, line.c_str());
        }
        else
        {
            std::fprintf(stderr, "%s\n", line.c_str());
        }
    }
    catch (...)
    {
    }
}

constexpr int32_t kNbInputs = 3;
constexpr int32_t kNbOutputs = 1;
constexpr int32_t kRank = 3;  // (B, L, D)

bool sameDims(Dims const& a, Dims const& b) noexcept
{
    if (a.nbDims != b.nbDims)
    {
        return false;
    }
    for (int32_t i = 0; i < a.nbDims; ++i)
    {
        if (a.d[i] != b.d[i])
        {
            return false;
        }
    }
    return true;
}

std::string dimsString(Dims const& d)
{
    std::string s = "(";
    for (int32_t i = 0; i < d.nbDims; ++i)
    {
        s += (i ? ", " : "") + std::to_string(static_cast<long long>(d.d[i]));
    }
    return s + ")";
}

// Build-time shape check: rank 3, equal shapes where known (-1 = dynamic), head size 1..64 if known.
bool checkShapes(Dims const* dims, int32_t n) noexcept
{
    try
    {
        for (int32_t i = 0; i < n; ++i)
        {
            if (dims[i].nbDims != kRank)
            {
                logError("every input must be (B, L, D); input " + std::to_string(i) + " is " + dimsString(dims[i]));
                return false;
            }
            for (int32_t j = 0; j < kRank; ++j)
            {
                if (dims[i].d[j] >= 0 && dims[0].d[j] >= 0 && dims[i].d[j] != dims[0].d[j])
                {
                    logError("q, k and v must have one shape; got " + dimsString(dims[0]) + " and " + dimsString(dims[i]));
                    return false;
                }
            }
        }
        auto const d = dims[0].d[2];
        if (d >= 0 && (d < 1 || d > TSI_ATTENTION_MAX_D))
        {
            logError("head size D must be 1.." + std::to_string(TSI_ATTENTION_MAX_D) + ", got " + std::to_string(d));
            return false;
        }
        return true;
    }
    catch (...)
    {
        return false;
    }
}

} // namespace

// ---- plugin --------------------------------------------------------------------------------------

SaliencyAttentionPlugin::SaliencyAttentionPlugin(float scale)
    : mScale(scale)
{
    mFields.emplace_back("scale", &mScale, PluginFieldType::kFLOAT32, 1);
    mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
    mFieldCollection.fields = mFields.data();
}

IPluginCapability* SaliencyAttentionPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
    case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
    case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

IPluginV3* SaliencyAttentionPlugin::clone() noexcept
{
    return new (std::nothrow) SaliencyAttentionPlugin(mScale);
}

char const* SaliencyAttentionPlugin::getPluginName() const noexcept
{
    return kSaliencyAttentionName;
}

char const* SaliencyAttentionPlugin::getPluginVersion() const noexcept
{
    return kSaliencyAttentionVersion;
}

char const* SaliencyAttentionPlugin::getPluginNamespace() const noexcept
{
    return kSaliencyAttentionNamespace;
}

int32_t SaliencyAttentionPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    if (in == nullptr || out == nullptr || nbInputs != kNbInputs || nbOutputs != kNbOutputs)
    {
        logError("expects 3 inputs (q, k, v) and 1 output");
        return -1;
    }
    Dims dims[kNbInputs] = {in[0].desc.dims, in[1].desc.dims, in[2].desc.dims};
    return checkShapes(dims, kNbInputs) ? 0 : -1;
}

int32_t SaliencyAttentionPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (outputTypes == nullptr || inputTypes == nullptr || nbOutputs != kNbOutputs || nbInputs != kNbInputs)
    {
        return -1;
    }
    outputTypes[0] = inputTypes[0];
    return 0;
}

int32_t SaliencyAttentionPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
    DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
    IExprBuilder& /*exprBuilder*/) noexcept
{
    if (inputs == nullptr || outputs == nullptr || nbInputs != kNbInputs || nbOutputs != kNbOutputs
        || inputs[0].nbDims != kRank)
    {
        logError("expects q, k, v of rank 3 (B, L, D) and one output");
        return -1;
    }
    outputs[0] = inputs[0];  // out has q's shape
    return 0;
}

bool SaliencyAttentionPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (inOut == nullptr || nbInputs != kNbInputs || nbOutputs != kNbOutputs || pos < 0
        || pos >= nbInputs + nbOutputs)
    {
        return false;
    }
    PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != TensorFormat::kLINEAR)
    {
        return false;
    }
    if (pos == 0)
    {
        return desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;
    }
    return desc.type == inOut[0].desc.type;  // all of kFLOAT or all of kHALF
}

int32_t SaliencyAttentionPlugin::getNbOutputs() const noexcept
{
    return kNbOutputs;
}

size_t SaliencyAttentionPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    return 0;
}

int32_t SaliencyAttentionPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    if (in == nullptr || out == nullptr || nbInputs != kNbInputs || nbOutputs != kNbOutputs)
    {
        return -1;
    }
    Dims dims[kNbInputs] = {in[0].dims, in[1].dims, in[2].dims};
    return checkShapes(dims, kNbInputs) ? 0 : -1;
}

int32_t SaliencyAttentionPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
    void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept
{
    try
    {
        if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr)
        {
            return -1;
        }
        Dims const& dq = inputDesc[0].dims;
        DataType const type = inputDesc[0].type;
        bool ok = dq.nbDims == kRank && sameDims(dq, inputDesc[1].dims) && sameDims(dq, inputDesc[2].dims)
            && sameDims(dq, outputDesc[0].dims) && inputDesc[1].type == type && inputDesc[2].type == type
            && outputDesc[0].type == type && (type == DataType::kFLOAT || type == DataType::kHALF);
        for (int32_t i = 0; ok && i < kRank; ++i)
        {
            ok = dq.d[i] >= 0 && dq.d[i] <= INT32_MAX;
        }
        if (!ok)
        {
            logError("enqueue: q, k, v, out must be (B, L, D) of one shape and one type (kFLOAT or kHALF); q is "
                + dimsString(dq));
            return -1;
        }
        int const dtype = type == DataType::kHALF ? TSI_DTYPE_FP16 : TSI_DTYPE_FP32;
        int const rc = tsiSaliencyAttention(inputs[0], inputs[1], inputs[2], outputs[0], static_cast<int>(dq.d[0]),
            static_cast<int>(dq.d[1]), static_cast<int>(dq.d[2]), mScale, dtype, stream);
        if (rc != 0)
        {
            logError("kernel launch failed: " + std::string(cudaGetErrorName(static_cast<cudaError_t>(rc))) + " for q "
                + dimsString(dq));
            return rc;
        }
        return 0;
    }
    catch (...)
    {
        return -1;
    }
}

IPluginV3* SaliencyAttentionPlugin::attachToContext(IPluginResourceContext* /*context*/) noexcept
{
    return clone();  // no per-context resources
}

PluginFieldCollection const* SaliencyAttentionPlugin::getFieldsToSerialize() noexcept
{
    return &mFieldCollection;
}

// ---- creator -------------------------------------------------------------------------------------

SaliencyAttentionPluginCreator::SaliencyAttentionPluginCreator()
{
    mFields.emplace_back("scale", nullptr, PluginFieldType::kFLOAT32, 1);
    mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
    mFieldCollection.fields = mFields.data();
}

char const* SaliencyAttentionPluginCreator::getPluginName() const noexcept
{
    return kSaliencyAttentionName;
}

char const* SaliencyAttentionPluginCreator::getPluginVersion() const noexcept
{
    return kSaliencyAttentionVersion;
}

char const* SaliencyAttentionPluginCreator::getPluginNamespace() const noexcept
{
    return kSaliencyAttentionNamespace;
}

PluginFieldCollection const* SaliencyAttentionPluginCreator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

IPluginV3* SaliencyAttentionPluginCreator::createPlugin(
    char const* /*name*/, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept
{
    try
    {
        float scale = 1.0F;  // the exported graph pre-scales q
        for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
        {
            PluginField const& f = fc->fields[i];
            if (f.name == nullptr || std::strcmp(f.name, "scale") != 0)
            {
                logError(std::string("unknown field '") + (f.name ? f.name : "(null)") + "'; the only field is 'scale'");
                return nullptr;
            }
            if (f.data == nullptr || f.length != 1)
            {
                logError("field 'scale' must hold one value");
                return nullptr;
            }
            if (f.type == PluginFieldType::kFLOAT32)
            {
                scale = *static_cast<float const*>(f.data);
            }
            else if (f.type == PluginFieldType::kFLOAT64)
            {
                scale = static_cast<float>(*static_cast<double const*>(f.data));
            }
            else
            {
                logError("field 'scale' must be kFLOAT32 (or kFLOAT64)");
                return nullptr;
            }
        }
        if (!std::isfinite(scale))
        {
            logError("field 'scale' must be finite");
            return nullptr;
        }
        return new SaliencyAttentionPlugin(scale);
    }
    catch (std::exception const& e)
    {
        logError(std::string("createPlugin: ") + e.what());
    }
    catch (...)
    {
    }
    return nullptr;
}

namespace
{

// The one creator of this library, shared by both ways of registering it.
SaliencyAttentionPluginCreator& theCreator() noexcept
{
    static SaliencyAttentionPluginCreator creator;
    return creator;
}

#if TSI_PLUGIN_STATIC_REGISTRATION
// Registered when the library is loaded (ctypes.CDLL, trtexec --staticPlugins, linking), under the
// creator's own namespace: REGISTER_TENSORRT_PLUGIN's PluginRegistrar passes "" as the namespace
// (TensorRT 10.3), which would leave "tsi::SaliencyAttention" unfindable.
bool gStaticallyRegistered = false;

struct StaticRegistration
{
    StaticRegistration() noexcept
    {
        IPluginRegistry* registry = getPluginRegistry();
        gStaticallyRegistered = registry != nullptr
            && registry->registerCreator(theCreator(), theCreator().getPluginNamespace());
        if (registry != nullptr && !gStaticallyRegistered)
        {
            logError("the plugin registry refused the creator (already registered?)");
        }
    }
};

StaticRegistration const gStaticRegistration{};
#endif

} // namespace

} // namespace tsi

// ---- entry points of IPluginRegistry::loadLibrary ------------------------------------------------

extern "C" __attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    tsi::gLoggerFinder = finder;
}

// IPluginRegistry::loadLibrary (trtexec --dynamicPlugins, trt.get_plugin_registry().load_library)
// dlopens the library (which runs the static registration above), then registers what this returns:
// the static registration is withdrawn first, so the creator is registered once, never twice.
extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators)
{
#if TSI_PLUGIN_STATIC_REGISTRATION
    if (tsi::gStaticallyRegistered)
    {
        nvinfer1::IPluginRegistry* registry = getPluginRegistry();
        if (registry != nullptr && registry->deregisterCreator(tsi::theCreator()))
        {
            tsi::gStaticallyRegistered = false;
        }
    }
#endif
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&tsi::theCreator()};
    nbCreators = 1;
    return creators;
}
