"""The TensorRT plugin compiled against NVIDIA's real headers of TensorRT 10.3 (JetPack 6) and 11.1,
linked with a stand-in for the few libnvinfer symbols it calls (plugin_harness/nvinfer_standin.cpp),
and driven by a host harness the way TensorRT drives it (plugin_harness/plugin_harness.cpp), loaded
three ways: dlopen (ctypes, trtexec --staticPlugins), IPluginRegistry::loadLibrary (trtexec
--dynamicPlugins), and both. enqueue runs against a float64 reference only where a CUDA device exists.

The headers come from the project's third_party folder (``../shared/third_party/tensorrt`` beside
the checkout, or $TSI_TENSORRT_THIRD_PARTY)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "export" / "plugin"
HARNESS_DIR = Path(__file__).resolve().parent / "plugin_harness"
THIRD_PARTY = Path(os.environ.get("TSI_TENSORRT_THIRD_PARTY", REPO.parent / "shared" / "third_party" / "tensorrt"))
NVCC, GXX = shutil.which("nvcc"), shutil.which("g++")
CUDA_HOME = next((p for p in (Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")),
                               Path(NVCC).resolve().parents[1] if NVCC else None)
                  if p is not None and (p / "include" / "cuda_runtime_api.h").is_file()), None)

pytestmark = [
    pytest.mark.skipif(NVCC is None or GXX is None or CUDA_HOME is None,
                       reason="nvcc, g++ and the CUDA headers ($CUDA_HOME) are needed to build the plugin"),
    pytest.mark.skipif(not (THIRD_PARTY / "10.3" / "include" / "NvInfer.h").is_file(),
                       reason=f"TensorRT headers not found in {THIRD_PARTY} (set TSI_TENSORRT_THIRD_PARTY)"),
]


def run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def kernel_object(tmp_path_factory) -> Path:
    """The CUDA kernel, compiled once (it does not include TensorRT)."""
    obj = tmp_path_factory.mktemp("kernel") / "saliency_attention.o"
    run([NVCC, "-c", "-Xcompiler", "-fPIC", "-arch=sm_87", "-O2", "-std=c++17", PLUGIN_DIR / "saliency_attention.cu",
         "-o", obj])
    return obj


@pytest.fixture(scope="module", params=["10.3", "11.1"])
def harness(request, kernel_object, tmp_path_factory):
    """(harness binary, libtsi_plugins.so) built against the headers of one TensorRT version."""
    version = request.param
    out = tmp_path_factory.mktemp(f"trt{version}")
    inc = ["-isystem", THIRD_PARTY / version / "include", "-isystem", CUDA_HOME / "include"]
    libs = ["-L", out, "-lnvinfer", "-L", CUDA_HOME / "lib64", "-lcudart", f"-Wl,-rpath,{out}:{CUDA_HOME / 'lib64'}"]
    run([GXX, "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-Wno-deprecated-declarations", *inc,
         HARNESS_DIR / "nvinfer_standin.cpp", "-o", out / "libnvinfer.so", "-ldl"])
    run([GXX, "-std=c++17", "-c", "-fPIC", "-Wall", "-Wextra", "-Werror", f"-I{PLUGIN_DIR}", *inc,
         PLUGIN_DIR / "saliency_attention_plugin.cpp", "-o", out / "plugin.o"])
    run([GXX, "-shared", out / "plugin.o", kernel_object, "-o", out / "libtsi_plugins.so", *libs])
    run([GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wno-deprecated-declarations", f"-I{PLUGIN_DIR}", *inc,
         HARNESS_DIR / "plugin_harness.cpp", "-o", out / "harness", *libs, "-ldl"])
    return version, out / "harness", out / "libtsi_plugins.so"


@pytest.mark.parametrize("mode", ["static", "dynamic", "both"])
def test_tensorrt_drives_the_plugin(harness, mode):
    version, binary, lib = harness
    proc = subprocess.run([str(binary), str(lib), mode], capture_output=True, text=True, timeout=120)
    print(f"\n--- TensorRT {version} headers, {mode}:\n{proc.stdout}{proc.stderr}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    assert f"TensorRT headers {version}." in text
    assert "creators named SaliencyAttention in the registry: 1" in text
    assert text.count("registry: registered tsi::SaliencyAttention v1") == (1 if mode == "static" else 2)
    assert "registry: refused" not in text  # never registered twice, never under the empty namespace
    if mode != "static":  # loadLibrary: the static registration withdrawn, then the registry's own
        assert "registry: deregistered tsi::SaliencyAttention v1" in text
    assert "getOutputShapes((2, 7*7, 16) x3) -> (2, 49, 16)" in text
    assert "supportsFormatCombination: 10 of " in text
    assert "enqueue: skipped (no CUDA device" in text or "enqueue: max |out - float64 reference|" in text
    assert "all checks passed" in text
