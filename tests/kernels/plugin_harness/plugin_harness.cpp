// Drives libtsi_plugins.so the way TensorRT does, against the real headers of one TensorRT version
// and the registry of nvinfer_standin.cpp:
//
//   plugin_harness <libtsi_plugins.so> static|dynamic|both
//
// static: dlopen (ctypes.CDLL, trtexec --staticPlugins); dynamic: IPluginRegistry::loadLibrary
// (trtexec --dynamicPlugins); both: dlopen, then loadLibrary. Then: the creator under namespace "tsi"
// (exactly once), its field names, createPlugin at build phase, output types and shapes through a
// test IExprBuilder, supportsFormatCombination over every type x format, configurePlugin,
// getWorkspaceSize, getFieldsToSerialize -> createPlugin at runtime phase, clone, attachToContext,
// and enqueue against a float64 reference where a CUDA device exists. Prints what it did; exit 0
// when every check passed, 1 otherwise (each failure printed as "FAIL: ...").
#include "plugin_identity.h"

#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace nvinfer1;

namespace
{

int gFailures = 0;

void check(bool ok, std::string const& what)
{
    if (!ok)
    {
        ++gFailures;
        std::printf("FAIL: %s\n", what.c_str());
    }
}

// -- a test IExprBuilder: constants and +, *, max, ... on them -------------------------------------
class ConstExpr final : public IDimensionExpr, public apiv::VDimensionExpr
{
public:
    explicit ConstExpr(int64_t v)
        : mValue(v)
    {
        mImpl = this;
    }
    bool isConstant() const override
    {
        return true;
    }
    int64_t getConstantValue() const override
    {
        return mValue;
    }
    bool isSizeTensor() const override
    {
        return false;
    }

private:
    int64_t mValue;
};

class TestExprBuilder final : public IExprBuilder, public apiv::VExprBuilder
{
public:
    TestExprBuilder()
    {
        mImpl = this;
    }
    IDimensionExpr const* constant(int64_t value) override
    {
        mExprs.push_back(std::make_unique<ConstExpr>(value));
        return mExprs.back().get();
    }
    IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& a, IDimensionExpr const& b) override
    {
        int64_t const x = a.getConstantValue(), y = b.getConstantValue();
        int64_t r = 0;
        switch (op)
        {
        case DimensionOperation::kSUM: r = x + y; break;
        case DimensionOperation::kPROD: r = x * y; break;
        case DimensionOperation::kMAX: r = x > y ? x : y; break;
        case DimensionOperation::kMIN: r = x < y ? x : y; break;
        case DimensionOperation::kSUB: r = x - y; break;
        default: r = -1;
        }
        ++operations;
        return constant(r);
    }
    IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override
    {
        return nullptr;
    }
    int operations = 0;

private:
    std::vector<std::unique_ptr<ConstExpr>> mExprs;
};

char const* typeName(DataType t)
{
    switch (t)
    {
    case DataType::kFLOAT: return "kFLOAT";
    case DataType::kHALF: return "kHALF";
    case DataType::kINT8: return "kINT8";
    case DataType::kINT32: return "kINT32";
    case DataType::kBOOL: return "kBOOL";
    case DataType::kUINT8: return "kUINT8";
    case DataType::kFP8: return "kFP8";
    case DataType::kBF16: return "kBF16";
    case DataType::kINT64: return "kINT64";
    case DataType::kINT4: return "kINT4";
    default: return "other";
    }
}

DynamicPluginTensorDesc desc(DataType type, TensorFormat format, Dims dims)
{
    DynamicPluginTensorDesc d{};
    d.desc.type = type;
    d.desc.format = format;
    d.desc.dims = dims;
    d.desc.scale = 1.0F;
    d.min = dims;
    d.max = dims;
    d.opt = dims;
    return d;
}

Dims dims3(int64_t b, int64_t l, int64_t d)
{
    Dims x{};
    x.nbDims = 3;
    x.d[0] = b;
    x.d[1] = l;
    x.d[2] = d;
    return x;
}

float fieldScale(PluginFieldCollection const* fc)
{
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
    {
        if (std::strcmp(fc->fields[i].name, "scale") == 0 && fc->fields[i].type == PluginFieldType::kFLOAT32)
        {
            return *static_cast<float const*>(fc->fields[i].data);
        }
    }
    return NAN;
}

void runEnqueue(IPluginV3OneRuntime* runtime, float scale)
{
    int count = 0;
    cudaError_t const err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0)
    {
        std::printf("enqueue: skipped (no CUDA device: %s)\n", err != cudaSuccess ? cudaGetErrorName(err) : "0 devices");
        return;
    }
    int const B = 2, L = 49, D = 16;
    size_t const n = static_cast<size_t>(B) * L * D;
    std::vector<float> q(n), k(n), v(n), out(n);
    for (size_t i = 0; i < n; ++i)
    {
        q[i] = std::sin(0.37F * i);
        k[i] = std::cos(0.11F * i);
        v[i] = std::sin(0.05F * i + 1.0F);
    }
    float* dev[4] = {};
    for (auto& p : dev)
    {
        check(cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(float)) == cudaSuccess, "cudaMalloc");
    }
    cudaMemcpy(dev[0], q.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    cudaMemcpy(dev[1], k.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    cudaMemcpy(dev[2], v.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    PluginTensorDesc in[3], o[1];
    for (auto* d : {&in[0], &in[1], &in[2], &o[0]})
    {
        *d = PluginTensorDesc{};
        d->dims = dims3(B, L, D);
        d->type = DataType::kFLOAT;
        d->format = TensorFormat::kLINEAR;
    }
    void const* inputs[3] = {dev[0], dev[1], dev[2]};
    void* outputs[1] = {dev[3]};
    check(runtime->enqueue(in, o, inputs, outputs, nullptr, nullptr) == 0, "enqueue returned an error");
    cudaMemcpy(out.data(), dev[3], n * sizeof(float), cudaMemcpyDeviceToHost);
    double worst = 0;
    for (int b = 0; b < B; ++b)
    {
        for (int i = 0; i < L; ++i)
        {
            std::vector<double> s(L);
            double m = -1e300, sum = 0;
            for (int j = 0; j < L; ++j)
            {
                double dot = 0;
                for (int d = 0; d < D; ++d)
                {
                    dot += double(q[(b * L + i) * D + d]) * k[(b * L + j) * D + d];
                }
                s[j] = scale * dot;
                m = s[j] > m ? s[j] : m;
            }
            for (int j = 0; j < L; ++j)
            {
                s[j] = std::exp(s[j] - m);
                sum += s[j];
            }
            for (int d = 0; d < D; ++d)
            {
                double r = 0;
                for (int j = 0; j < L; ++j)
                {
                    r += s[j] / sum * v[(b * L + j) * D + d];
                }
                worst = std::fmax(worst, std::fabs(r - out[(b * L + i) * D + d]));
            }
        }
    }
    std::printf("enqueue: max |out - float64 reference| = %.3g over (%d, %d, %d)\n", worst, B, L, D);
    check(worst < 1e-4, "enqueue result differs from the float64 reference");
    for (auto p : dev)
    {
        cudaFree(p);
    }
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 3)
    {
        std::printf("usage: %s <libtsi_plugins.so> static|dynamic|both\n", argv[0]);
        return 2;
    }
    std::string const mode = argv[2];
    std::printf("TensorRT headers %d.%d.%d, mode %s\n", NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR, NV_TENSORRT_PATCH,
        mode.c_str());
    IPluginRegistry* registry = getPluginRegistry();
    if (mode == "static" || mode == "both")
    {
        check(dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL) != nullptr, std::string("dlopen: ") + (dlerror() ?: ""));
    }
    if (mode == "dynamic" || mode == "both")
    {
        check(registry->loadLibrary(argv[1]) != nullptr, "loadLibrary refused the library");
    }
    int32_t n = 0;
    IPluginCreatorInterface* const* all = registry->getAllCreators(&n);
    int named = 0;
    for (int32_t i = 0; i < n; ++i)
    {
        auto* c = static_cast<IPluginCreatorV3One*>(all[i]);
        named += std::strcmp(c->getPluginName(), TSI_PLUGIN_NAME) == 0;
    }
    std::printf("creators named %s in the registry: %d\n", TSI_PLUGIN_NAME, named);
    check(named == 1, "the creator must be registered exactly once");
    check(registry->getCreator(TSI_PLUGIN_NAME, TSI_PLUGIN_VERSION, "") == nullptr,
        "the creator is registered under the empty namespace");
    auto* creator = static_cast<IPluginCreatorV3One*>(
        registry->getCreator(TSI_PLUGIN_NAME, TSI_PLUGIN_VERSION, TSI_PLUGIN_NAMESPACE));
    check(creator != nullptr, "no creator " TSI_PLUGIN_NAMESPACE "::" TSI_PLUGIN_NAME " v" TSI_PLUGIN_VERSION);
    if (creator == nullptr)
    {
        return 1;
    }
    std::printf("getCreators: %s::%s v%s (%s)\n", creator->getPluginNamespace(), creator->getPluginName(),
        creator->getPluginVersion(), creator->getInterfaceInfo().kind);
    PluginFieldCollection const* names = creator->getFieldNames();
    for (int32_t i = 0; i < names->nbFields; ++i)
    {
        std::printf("field: %s type %d length %d\n", names->fields[i].name, static_cast<int>(names->fields[i].type),
            names->fields[i].length);
    }
    check(names->nbFields == 1 && std::strcmp(names->fields[0].name, "scale") == 0, "field names");

    // build phase
    float const scale = 0.25F;
    PluginField field("scale", &scale, PluginFieldType::kFLOAT32, 1);
    PluginFieldCollection fc{1, &field};
    std::unique_ptr<IPluginV3> plugin(creator->createPlugin("sa0", &fc, TensorRTPhase::kBUILD));
    check(plugin != nullptr, "createPlugin (build phase)");
    if (!plugin)
    {
        return 1;
    }
    auto* core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
    auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    check(core && build && runtime, "capability interfaces");
    std::printf("createPlugin(build): %s::%s v%s, %d output(s)\n", core->getPluginNamespace(), core->getPluginName(),
        core->getPluginVersion(), build->getNbOutputs());
    for (DataType t : {DataType::kFLOAT, DataType::kHALF})
    {
        DataType inTypes[3] = {t, t, t};
        DataType outType{};
        check(build->getOutputDataTypes(&outType, 1, inTypes, 3) == 0 && outType == t, "getOutputDataTypes");
        std::printf("getOutputDataTypes(%s) -> %s\n", typeName(t), typeName(outType));
    }
    TestExprBuilder exprs;
    DimsExprs in[3], out[1];
    for (auto& e : in)
    {
        e.nbDims = 3;
        e.d[0] = exprs.constant(2);
        e.d[1] = exprs.operation(DimensionOperation::kPROD, *exprs.constant(7), *exprs.constant(7));
        e.d[2] = exprs.constant(16);
    }
    check(build->getOutputShapes(in, 3, nullptr, 0, out, 1, exprs) == 0, "getOutputShapes");
    std::printf("getOutputShapes((2, 7*7, 16) x3) -> (%lld, %lld, %lld)\n",
        static_cast<long long>(out[0].d[0]->getConstantValue()), static_cast<long long>(out[0].d[1]->getConstantValue()),
        static_cast<long long>(out[0].d[2]->getConstantValue()));
    check(out[0].nbDims == 3 && out[0].d[1]->getConstantValue() == 49, "output shape");

    // every type x format, at every position (positions 1..3 next to a kFLOAT/kHALF LINEAR q)
    int const nTypes = EnumMax<DataType>(), nFormats = EnumMax<TensorFormat>();
    int accepted = 0, tried = 0;
    std::string list;
    for (int pos = 0; pos < 4; ++pos)
    {
        for (DataType q : {DataType::kFLOAT, DataType::kHALF})
        {
            for (int t = 0; t < nTypes; ++t)
            {
                for (int f = 0; f < nFormats; ++f)
                {
                    DynamicPluginTensorDesc io[4];
                    for (auto& d : io)
                    {
                        d = desc(q, TensorFormat::kLINEAR, dims3(2, 49, 16));
                    }
                    io[pos] = desc(static_cast<DataType>(t), static_cast<TensorFormat>(f), dims3(2, 49, 16));
                    bool const ok = build->supportsFormatCombination(pos, io, 3, 1);
                    bool const want = f == static_cast<int>(TensorFormat::kLINEAR)
                        && (pos == 0 ? (t == static_cast<int>(DataType::kFLOAT) || t == static_cast<int>(DataType::kHALF))
                                     : t == static_cast<int>(q));
                    ++tried;
                    accepted += ok;
                    check(ok == want, "supportsFormatCombination pos " + std::to_string(pos) + " type "
                            + typeName(static_cast<DataType>(t)) + " format " + std::to_string(f));
                    if (ok && q == DataType::kFLOAT)
                    {
                        list += " " + std::to_string(pos) + ":" + typeName(static_cast<DataType>(t)) + "/LINEAR";
                    }
                }
            }
        }
    }
    std::printf("supportsFormatCombination: %d of %d (position, type, format) accepted (%d types x %d formats);"
                " next to kFLOAT q:%s\n", accepted, tried, nTypes, nFormats, list.c_str());

    DynamicPluginTensorDesc cin[3] = {desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(-1, 49, 16)),
        desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(-1, 49, 16)),
        desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(-1, 49, 16))};
    DynamicPluginTensorDesc cout[1] = {desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(-1, 49, 16))};
    check(build->configurePlugin(cin, 3, cout, 1) == 0, "configurePlugin (B dynamic, L 49, D 16)");
    DynamicPluginTensorDesc bad[3] = {desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(2, 49, 65)),
        desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(2, 49, 65)),
        desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(2, 49, 65))};
    check(build->configurePlugin(bad, 3, cout, 1) != 0, "configurePlugin must refuse D = 65");
    std::printf("configurePlugin: (-1, 49, 16) accepted, D = 65 refused\n");
    std::printf("getWorkspaceSize: %zu\n", build->getWorkspaceSize(cin, 3, cout, 1));
    check(build->getWorkspaceSize(cin, 3, cout, 1) == 0, "workspace");

    // serialisation -> runtime phase, clone, attachToContext
    PluginFieldCollection const* ser = runtime->getFieldsToSerialize();
    std::printf("getFieldsToSerialize: %d field(s), scale = %g\n", ser->nbFields, fieldScale(ser));
    check(fieldScale(ser) == scale, "serialized scale");
    std::unique_ptr<IPluginV3> restored(creator->createPlugin("sa0", ser, TensorRTPhase::kRUNTIME));
    check(restored != nullptr, "createPlugin (runtime phase)");
    auto* rt2 = static_cast<IPluginV3OneRuntime*>(restored->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    check(fieldScale(rt2->getFieldsToSerialize()) == scale, "scale after deserialisation");
    std::unique_ptr<IPluginV3> cloned(restored->clone());
    check(cloned != nullptr && cloned.get() != restored.get(), "clone");
    auto* rt3 = static_cast<IPluginV3OneRuntime*>(cloned->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    check(fieldScale(rt3->getFieldsToSerialize()) == scale, "clone keeps the scale");
    std::unique_ptr<IPluginV3> attached(rt3->attachToContext(nullptr));
    check(attached != nullptr, "attachToContext");
    PluginTensorDesc pin[3], pout[1];
    for (auto* d : {&pin[0], &pin[1], &pin[2], &pout[0]})
    {
        *d = PluginTensorDesc{};
        d->dims = dims3(2, 49, 16);
        d->type = DataType::kHALF;
        d->format = TensorFormat::kLINEAR;
    }
    check(rt3->onShapeChange(pin, 3, pout, 1) == 0, "onShapeChange");
    std::printf("createPlugin(runtime), clone, attachToContext, onShapeChange: ok\n");
    runEnqueue(static_cast<IPluginV3OneRuntime*>(attached->getCapabilityInterface(PluginCapabilityType::kRUNTIME)),
        scale);
    std::printf("%s (%d failure(s))\n", gFailures ? "FAILED" : "all checks passed", gFailures);
    return gFailures ? 1 : 0;
}
