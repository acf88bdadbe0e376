// A stand-in for the few libnvinfer symbols libtsi_plugins.so calls (getPluginRegistry) and the
// harness needs, built against the real TensorRT headers of one version (10.3 or 11.1). The registry
// behaves as TensorRT's: a creator is found by (name, version, namespace); registering the same
// triple twice is refused; loadLibrary dlopens a plugin library, calls its getCreators() and
// registers each creator under the namespace the creator reports. Every registration is printed.
#include <NvInferRuntime.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace nvinfer1;

namespace
{

struct Entry
{
    IPluginCreatorInterface* creator;
    std::string ns;
    std::string name;
    std::string version;
};

bool creatorNames(IPluginCreatorInterface& c, std::string& name, std::string& version)
{
    if (std::strcmp(c.getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") != 0)
    {
        return false;
    }
    auto& v3 = static_cast<IPluginCreatorV3One&>(c);
    name = v3.getPluginName();
    version = v3.getPluginVersion();
    return true;
}

class StandInRegistry final : public IPluginRegistry
{
public:
    std::vector<Entry> entries;
    std::vector<IPluginCreatorInterface*> all;

    bool registerCreator(IPluginCreatorInterface& creator, AsciiChar const* const pluginNamespace) noexcept override
    {
        std::string name, version;
        std::string const ns = pluginNamespace != nullptr ? pluginNamespace : "";
        if (!creatorNames(creator, name, version))
        {
            std::printf("registry: refused a creator that is not IPluginCreatorV3One\n");
            return false;
        }
        for (auto const& e : entries)
        {
            if (e.name == name && e.version == version && e.ns == ns)
            {
                std::printf("registry: refused %s::%s v%s (already registered)\n", ns.c_str(), name.c_str(),
                    version.c_str());
                return false;
            }
        }
        entries.push_back({&creator, ns, name, version});
        std::printf("registry: registered %s::%s v%s\n", ns.c_str(), name.c_str(), version.c_str());
        return true;
    }

    IPluginCreatorInterface* const* getAllCreators(int32_t* const numCreators) const noexcept override
    {
        auto& self = const_cast<StandInRegistry&>(*this);
        self.all.clear();
        for (auto const& e : entries)
        {
            self.all.push_back(e.creator);
        }
        *numCreators = static_cast<int32_t>(all.size());
        return all.data();
    }

    IPluginCreatorInterface* getCreator(AsciiChar const* const pluginName, AsciiChar const* const pluginVersion,
        AsciiChar const* const pluginNamespace = "") noexcept override
    {
        for (auto const& e : entries)
        {
            if (e.name == pluginName && e.version == pluginVersion && e.ns == (pluginNamespace ? pluginNamespace : ""))
            {
                return e.creator;
            }
        }
        return nullptr;
    }

    bool deregisterCreator(IPluginCreatorInterface const& creator) noexcept override
    {
        for (auto it = entries.begin(); it != entries.end(); ++it)
        {
            if (it->creator == &creator)
            {
                std::printf("registry: deregistered %s::%s v%s\n", it->ns.c_str(), it->name.c_str(), it->version.c_str());
                entries.erase(it);
                return true;
            }
        }
        return false;
    }

    PluginLibraryHandle loadLibrary(AsciiChar const* pluginPath) noexcept override
    {
        void* handle = dlopen(pluginPath, RTLD_LAZY | RTLD_LOCAL);
        if (handle == nullptr)
        {
            std::printf("registry: loadLibrary: %s\n", dlerror());
            return nullptr;
        }
        using GetCreators = IPluginCreatorInterface* const* (*) (int32_t&);
        auto getCreators = reinterpret_cast<GetCreators>(dlsym(handle, "getCreators"));
        if (getCreators == nullptr)
        {
            std::printf("registry: loadLibrary: %s has no getCreators()\n", pluginPath);
            return nullptr;
        }
        int32_t n = 0;
        IPluginCreatorInterface* const* creators = getCreators(n);
        for (int32_t i = 0; i < n; ++i)
        {
            std::string name, version;
            if (!creatorNames(*creators[i], name, version)
                || !registerCreator(*creators[i], static_cast<IPluginCreatorV3One*>(creators[i])->getPluginNamespace()))
            {
                std::printf("registry: loadLibrary: %s refused\n", pluginPath);
                return nullptr;
            }
        }
        return handle;
    }

    void deregisterLibrary(PluginLibraryHandle) noexcept override {}
    void setErrorRecorder(IErrorRecorder* const) noexcept override {}
    IErrorRecorder* getErrorRecorder() const noexcept override
    {
        return nullptr;
    }
    bool isParentSearchEnabled() const override
    {
        return false;
    }
    void setParentSearchEnabled(bool const) override {}
    IPluginResource* acquirePluginResource(AsciiChar const*, IPluginResource*) noexcept override
    {
        return nullptr;
    }
    int32_t releasePluginResource(AsciiChar const*) noexcept override
    {
        return 0;
    }
#if NV_TENSORRT_MAJOR < 11
    // the IPluginCreator (V2) registry, deprecated in 10 and removed in 11: nothing registers there
    bool registerCreator(IPluginCreator&, AsciiChar const* const) noexcept override
    {
        return false;
    }
    IPluginCreator* const* getPluginCreatorList(int32_t* const numCreators) const noexcept override
    {
        *numCreators = 0;
        return nullptr;
    }
    IPluginCreator* getPluginCreator(AsciiChar const* const, AsciiChar const* const, AsciiChar const* const) noexcept override
    {
        return nullptr;
    }
    bool deregisterCreator(IPluginCreator const&) noexcept override
    {
        return false;
    }
#else
    IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const numCreators) noexcept override
    {
        return getAllCreators(numCreators);
    }
#endif
};

} // namespace

extern "C" IPluginRegistry* getPluginRegistry() noexcept
{
    static StandInRegistry registry;
    return &registry;
}
