"""The CUDA kernel and the TensorRT plugin build: nvcc per target architecture, CMake, the C ABI.

No GPU here: what runs is the compiler and the host side of the library (argument checks, the
tiling table that tsi/kernels/reference.py mirrors). The kernel's arithmetic is verified on the CPU
by the NumPy mirror (test_reference.py); its GPU run is benchmarks/attention_gpu.py.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tsi.kernels.reference import MAX_HEAD, tile_config

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "export" / "plugin"
KERNEL_SRC = PLUGIN_DIR / "saliency_attention.cu"
PLUGIN_SRC = PLUGIN_DIR / "saliency_attention_plugin.cpp"
NVCC = shutil.which("nvcc")
CMAKE = shutil.which("cmake")
CUDA_INVALID_VALUE = 1  # cudaErrorInvalidValue

needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc (CUDA toolkit) is not on PATH")
needs_cmake = pytest.mark.skipif(CMAKE is None, reason="cmake is not on PATH")


def run(cmd: list[str], cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def tensorrt_include() -> Path | None:
    """The directory holding NvInfer.h: $TENSORRT_ROOT/include or the .deb / JetPack locations."""
    roots = [Path(os.environ["TENSORRT_ROOT"]) / "include"] if os.environ.get("TENSORRT_ROOT") else []
    roots += [Path("/usr/include/x86_64-linux-gnu"), Path("/usr/include/aarch64-linux-gnu"), Path("/usr/include")]
    return next((r for r in roots if (r / "NvInfer.h").is_file()), None)


ARCHS = ("75", "87", "90", "110")  # Turing (T4), Jetson Orin, Hopper, Jetson Thor


@needs_nvcc
def test_kernel_compiles_without_spills(tmp_path):
    # -warn-spills + -Werror: a register spill in any of the 10 instantiations, for any architecture,
    # fails the build; one nvcc call compiles the architectures in parallel (--threads 0: every CPU)
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in ARCHS]
    proc = run([NVCC, "-c", "--threads", "0", *gencode, "-O3", "-std=c++17", "-Xptxas=-warn-spills",
                "--Werror=all-warnings", str(KERNEL_SRC), "-o", str(tmp_path / "saliency_attention.o")])
    assert (tmp_path / "saliency_attention.o").stat().st_size > 0
    assert "spill" not in proc.stderr


@needs_nvcc
@pytest.mark.trt
@pytest.mark.skipif(tensorrt_include() is None,
                    reason="TensorRT headers (NvInfer.h) are not installed: TensorRT cannot be installed on this "
                           "machine; the plugin is compiled where TensorRT exists (see export/plugin/README.md)")
def test_plugin_compiles_against_tensorrt(tmp_path):
    run([NVCC, "-c", "-std=c++17", "-Xcompiler=-Wall,-Wextra", f"-I{PLUGIN_DIR}", f"-isystem={tensorrt_include()}",
         str(PLUGIN_SRC), "-o", str(tmp_path / "plugin.o")])


@pytest.fixture(scope="module")
def attention_lib(tmp_path_factory) -> Path:
    """libtsi_attention.so built by the project's CMakeLists (kernel only) for one architecture: what
    runs here is its host side; every default architecture's device code is compiled by
    test_kernel_compiles_without_spills, and the default list is test_cmake_default_architectures'."""
    if NVCC is None or CMAKE is None:
        pytest.skip("cmake and nvcc are needed to build libtsi_attention.so")
    build = tmp_path_factory.mktemp("build")
    run([CMAKE, "-S", str(PLUGIN_DIR), "-B", str(build), "-DTSI_BUILD_PLUGIN=OFF", f"-DCMAKE_CUDA_COMPILER={NVCC}",
         "-DCMAKE_CUDA_ARCHITECTURES=87"])
    run([CMAKE, "--build", str(build), "-j2"])
    lib = build / "libtsi_attention.so"
    assert lib.is_file()
    return lib


def test_cmake_builds_kernel_library(attention_lib):
    lib = ctypes.CDLL(str(attention_lib))
    assert hasattr(lib, "tsiSaliencyAttention") and hasattr(lib, "tsiSaliencyAttentionTiling")


@needs_nvcc
@needs_cmake
def test_cmake_default_architectures(tmp_path):
    run([CMAKE, "-S", str(PLUGIN_DIR), "-B", str(tmp_path), "-DTSI_BUILD_PLUGIN=OFF", f"-DCMAKE_CUDA_COMPILER={NVCC}"])
    cache = (tmp_path / "CMakeCache.txt").read_text()
    archs = next(ln.split("=", 1)[1] for ln in cache.splitlines() if ln.startswith("CMAKE_CUDA_ARCHITECTURES:"))
    version = subprocess.run([NVCC, "--version"], capture_output=True, text=True).stdout
    cuda_major = int(version.split("release ")[1].split(".")[0])
    # Jetson Thor (sm_110) by default where the compiler knows it (CUDA >= 13), never on CUDA 12 (JetPack 6)
    assert archs.split(";")[:3] == ["75", "87", "90"] and ("110" in archs.split(";")) == (cuda_major >= 13), archs


@needs_nvcc
@needs_cmake
@pytest.mark.skipif(tensorrt_include() is not None, reason="TensorRT is installed here")
def test_cmake_plugin_build_fails_loudly_without_tensorrt(tmp_path):
    proc = subprocess.run([CMAKE, "-S", str(PLUGIN_DIR), "-B", str(tmp_path), f"-DCMAKE_CUDA_COMPILER={NVCC}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "TensorRT not found" in proc.stderr and "TSI_BUILD_PLUGIN=OFF" in proc.stderr


def test_tiling_table_matches_numpy_mirror(attention_lib):
    lib = ctypes.CDLL(str(attention_lib))
    vals = [ctypes.c_int() for _ in range(5)]
    for d in range(1, MAX_HEAD + 1):
        assert lib.tsiSaliencyAttentionTiling(d, *map(ctypes.byref, vals)) == 0
        cfg = tile_config(d)
        expected = (cfg.d_pad, cfg.tile_keys, cfg.rows_per_block, cfg.threads_per_row, cfg.chunk_keys)
        assert tuple(v.value for v in vals) == expected, f"D={d}"
    for d in (0, MAX_HEAD + 1):
        assert lib.tsiSaliencyAttentionTiling(d, *map(ctypes.byref, vals)) == CUDA_INVALID_VALUE


def test_launcher_rejects_bad_arguments_before_touching_the_gpu(attention_lib):
    f = ctypes.CDLL(str(attention_lib)).tsiSaliencyAttention
    f.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int] * 3 + [ctypes.c_float, ctypes.c_int, ctypes.c_void_p]
    f.restype = ctypes.c_int
    q, k, v, o = 0x1000, 0x2000, 0x3000, 0x4000  # never dereferenced: every call below returns before a launch
    assert f(q, k, v, o, 0, 49, 4, 1.0, 0, None) == 0  # B = 0: nothing to do
    assert f(q, k, v, o, 3, 0, 4, 1.0, 1, None) == 0  # L = 0
    bad = [
        (q, k, v, o, -1, 49, 4, 1.0, 0),  # negative B
        (q, k, v, o, 1, -5, 4, 1.0, 0),  # negative L
        (q, k, v, o, 1, 49, 0, 1.0, 0),  # D = 0
        (q, k, v, o, 1, 49, MAX_HEAD + 1, 1.0, 0),  # D too large
        (q, k, v, o, 1, 49, 4, 1.0, 2),  # unknown dtype
        (None, k, v, o, 1, 49, 4, 1.0, 0),  # null pointer
        (q, k, v, k, 1, 49, 4, 1.0, 0),  # out aliases k
        (q, k, v, q, 1, 49, 4, 1.0, 0),  # out aliases q
    ]
    for args in bad:
        assert f(*args, None) == CUDA_INVALID_VALUE, args
