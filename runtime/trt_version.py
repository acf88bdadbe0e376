"""THE TensorRT version module: the lazy import and every version split, in one place.

Compared with ``packaging.version`` on the release numbers (``10.12.0.36`` > ``10.3.0.30``; a
pre-release of 11.0 counts as 11.0), never as strings. Facts (design/deployment.md, NVIDIA's
release notes):

- 10.1 deprecated the INT8 calibrators and ``setDynamicRange``; 11.0 removed them.
- 10.12 deprecated ``BuilderFlag.FP16``/``INT8``; 11.0 removed them (networks strongly typed: FP16
  comes from the graph's own types, INT8 only from Q/DQ).
- Strongly typed networks and ``IPluginV3`` from 10.0; Python plugins (``tensorrt.plugin``) from
  10.6 (ahead-of-time from 10.9) - not on JetPack 6 (10.3).
- The ONNX parser reads a plugin node's namespace from its ``plugin_namespace`` attribute (10.3) and
  from the node domain from 10.10.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

# the TensorRT the project targets (JetPack 6.1/6.2's): the export's parser check, the default of a
# calibration cache's header, the commands printed for the target
TARGET_TRT = "10.3"
TARGET_PLATFORM = f"JetPack 6.1/6.2: TensorRT {TARGET_TRT}"

INSTALL_HINT = (
    f"TensorRT is not installed. On a Jetson it comes with JetPack ({TARGET_PLATFORM}; "
    "`sudo apt install nvidia-jetpack` or `python3-libnvinfer`); on a desktop install NVIDIA's wheels "
    "(`pip install tensorrt` from pypi.nvidia.com, matching your CUDA). It cannot be pip-installed on "
    "machines without an NVIDIA GPU and driver."
)
CUDA_HINT = ("cuda-python is not installed: `pip install cuda-python` (version matching the CUDA of "
             "your TensorRT, e.g. 12.x for JetPack 6).")


def import_tensorrt():
    """``import tensorrt`` with an error that says where TensorRT comes from."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return trt


def tensorrt_available() -> bool:
    try:
        import_tensorrt()
    except ImportError:
        return False
    return True


def import_cudart():
    """``cuda.bindings.runtime`` (cuda-python >= 12.6), or the older ``cuda.cudart`` module."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python < 12.6
        except ImportError as e:
            raise ImportError(f"{CUDA_HINT} ({e})") from e
    return cudart


def parse_version(text: str) -> Version:
    try:
        v = Version(str(text).strip())
    except InvalidVersion:
        raise ValueError(f"not a TensorRT version: {text!r}") from None
    return Version(v.base_version)  # 11.0.0rc1 -> 11.0.0: feature splits go by release number


V10_0, V10_1, V10_3, V10_6, V10_9, V10_10, V10_12, V11_0 = (
    Version(v) for v in ("10.0", "10.1", TARGET_TRT, "10.6", "10.9", "10.10", "10.12", "11.0"))


@dataclass(frozen=True)
class TRTCapabilities:
    version: Version

    @classmethod
    def of(cls, version: str | Version) -> "TRTCapabilities":
        return cls(version if isinstance(version, Version) else parse_version(version))

    # -- precision --------------------------------------------------------------------------------
    @property
    def has_builder_flag_fp16_int8(self) -> bool:
        """``BuilderFlag.FP16``/``INT8`` exist (removed in 11.0)."""
        return self.version < V11_0

    @property
    def builder_flag_fp16_int8_deprecated(self) -> bool:
        return self.version >= V10_12

    @property
    def has_implicit_int8_calibration(self) -> bool:
        """``IInt8EntropyCalibrator2`` / calibration caches / ``setDynamicRange`` (removed in 11.0)."""
        return self.version < V11_0

    @property
    def implicit_int8_deprecated(self) -> bool:
        return self.version >= V10_1

    @property
    def strongly_typed_supported(self) -> bool:
        return self.version >= V10_0

    @property
    def strongly_typed_only(self) -> bool:
        """11.x: every network is strongly typed (FP16 from the graph's types, INT8 from Q/DQ)."""
        return self.version >= V11_0

    # -- plugins ----------------------------------------------------------------------------------
    @property
    def plugin_v3(self) -> bool:
        return self.version >= V10_0

    @property
    def python_plugins(self) -> bool:
        return self.version >= V10_6

    @property
    def python_plugins_aot(self) -> bool:
        return self.version >= V10_9

    @property
    def plugin_namespace_source(self) -> str:
        """Where the ONNX parser reads a plugin node's namespace: "attribute" or "domain"."""
        return "domain" if self.version >= V10_10 else "attribute"

    # -- calibration cache ------------------------------------------------------------------------
    @property
    def version_int(self) -> int:
        """NV_TENSORRT_VERSION as written in calibration-cache headers: 10.3.0 -> 100300
        (major*10000 + minor*100 + patch from TensorRT 10; 8.6.1 -> 8601 before)."""
        major, minor, patch = (list(self.version.release) + [0, 0])[:3]
        return major * (10000 if major >= 10 else 1000) + minor * 100 + patch

    def precision_route(self, precision: str, *, implicit_int8: bool = False) -> str:
        """How an engine of ``precision`` (fp32/fp16/int8) is built on this version:
        ``"fp32"``, ``"flags"`` (BuilderFlag FP16/INT8 on a weakly typed network),
        ``"strongly_typed"`` (the graph's types and Q/DQ decide), or ``"calibration"``
        (implicit INT8 from a calibration cache / calibrator). Raises for impossible combinations."""
        if precision not in ("fp32", "fp16", "int8"):
            raise ValueError(f"precision must be fp32, fp16 or int8 (got {precision!r})")
        if implicit_int8:
            if precision != "int8":
                raise ValueError("implicit calibration (--calib-cache) only makes INT8 engines")
            if not self.has_implicit_int8_calibration:
                raise ValueError(f"TensorRT {self.version} removed implicit INT8 calibration (11.0); "
                                 "use the Q/DQ graph (--int8 without --calib-cache)")
            return "calibration"
        if precision == "fp32":
            return "fp32"
        # 10.x: a weakly typed network with BuilderFlag.FP16 (+ INT8 for the Q/DQ graph, whose float
        # layers may then run in FP16); 11.x: strongly typed, the FP16 / Q/DQ graph's types decide.
        return "flags" if self.has_builder_flag_fp16_int8 else "strongly_typed"


def capabilities(version: str | None = None) -> TRTCapabilities:
    """Capabilities of ``version``, or of the installed TensorRT when None (imports it)."""
    if version is None:
        version = import_tensorrt().__version__
    return TRTCapabilities.of(version)
