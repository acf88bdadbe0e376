import sys

import pytest

from runtime.trt_version import TRTCapabilities, capabilities, import_tensorrt, parse_version


@pytest.mark.parametrize("version, flags, implicit, strong_only, v3, pyplug, ns, vint", [
    ("8.6.1", True, True, False, False, False, "attribute", 8601),
    ("10.0.1.6", True, True, False, True, False, "attribute", 100001),
    ("10.3.0.30", True, True, False, True, False, "attribute", 100300),  # JetPack 6.1/6.2
    ("10.6.0", True, True, False, True, True, "attribute", 100600),
    ("10.10.0.31", True, True, False, True, True, "domain", 101000),
    ("10.12.0.36", True, True, False, True, True, "domain", 101200),
    ("11.0.0", False, False, True, True, True, "domain", 110000),
    ("11.0.0rc1", False, False, True, True, True, "domain", 110000),  # a pre-release of 11 is 11
])
def test_capabilities(version, flags, implicit, strong_only, v3, pyplug, ns, vint):
    c = TRTCapabilities.of(version)
    assert c.has_builder_flag_fp16_int8 is flags
    assert c.has_implicit_int8_calibration is implicit
    assert c.strongly_typed_only is strong_only
    assert c.plugin_v3 is v3 and c.strongly_typed_supported is v3
    assert c.python_plugins is pyplug
    assert c.plugin_namespace_source == ns
    assert c.version_int == vint


def test_deprecations_compare_numbers_not_strings():
    # "10.12" < "10.3" as strings; as versions 10.12 is the later one
    assert TRTCapabilities.of("10.12").builder_flag_fp16_int8_deprecated
    assert not TRTCapabilities.of("10.3").builder_flag_fp16_int8_deprecated
    assert TRTCapabilities.of("10.1").implicit_int8_deprecated
    assert not TRTCapabilities.of("10.0.1").implicit_int8_deprecated
    assert TRTCapabilities.of("10.9").python_plugins_aot and not TRTCapabilities.of("10.8").python_plugins_aot
    assert parse_version("10.3.0.30") < parse_version("10.12.0")


def test_precision_routes():
    v103, v11 = TRTCapabilities.of("10.3.0"), TRTCapabilities.of("11.1.0")
    assert v103.precision_route("fp16") == "flags" and v103.precision_route("int8") == "flags"
    assert v103.precision_route("int8", implicit_int8=True) == "calibration"
    assert v11.precision_route("fp16") == "strongly_typed" == v11.precision_route("int8")
    assert v103.precision_route("fp32") == "fp32" == v11.precision_route("fp32")
    with pytest.raises(ValueError, match="removed implicit INT8"):
        v11.precision_route("int8", implicit_int8=True)
    with pytest.raises(ValueError, match="only makes INT8"):
        v103.precision_route("fp16", implicit_int8=True)
    with pytest.raises(ValueError):
        v103.precision_route("bf16")


def test_bad_version_and_missing_tensorrt(monkeypatch):
    with pytest.raises(ValueError, match="not a TensorRT version"):
        parse_version("ten.three")
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    with pytest.raises(ImportError, match="JetPack") as e:
        import_tensorrt()
    assert "pypi.nvidia.com" in str(e.value)
    with pytest.raises(ImportError):
        capabilities()
    assert capabilities("10.3").version_int == 100300
