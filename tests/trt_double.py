"""Test doubles of the ``tensorrt`` module, generated from the API manifests of TensorRT 10.3 and 11.1
(tests/tensorrt_api/: every class, method with its keyword names, property and enum value of the
real module, read from NVIDIA's pybind11 sources).

A double has exactly the names of its version: a class, enum value, method or property the real
module lacks raises ``AttributeError`` (``trt.BuilderFlag.FP16`` on 11.1, ``config.int8_calibrator``
on 11.1, ...); a keyword argument the real method does not name raises ``TypeError``; setting a
property that does not exist raises ``AttributeError``. Every method call and property assignment is
recorded in ``trt.calls`` as ``("Class.method", args, kwargs)`` / ``("Class.property=", value)``.

What a method returns comes from a *world* (:class:`World`): a minimal TensorRT that parses an ONNX
file into layers (one per node), "builds" a serialized engine (JSON: the input shape, the classes,
the dtype) and deserializes it into an engine whose execution context computes a small known
function of its input through the cudart stand-in (tests/runtime/fake_cudart.py), so the runtime
backend's wiring is checked end to end.

The manifests come from the binding sources and miss what pybind11 declares without a name:
:data:`SUPPLEMENT` adds those few, each one as NVIDIA's bindings define it (constructors
``py::init``, module attributes ``m.attr``, the ``Severity`` values exported into ``ILogger`` /
``Logger``, the buffer protocol of ``IHostMemory`` and ``nptype`` from ``tensorrt/__init__.py``).
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

API_DIR = Path(__file__).resolve().parent / "tensorrt_api"
VERSIONS = {"10.3": "10.3.0.30", "11.1": "11.1.0.0"}  # manifest -> the __version__ the double reports

# names pybind11 binds without a string the manifest extraction can see
SUPPLEMENT = {
    "constructors": {"Builder": ["logger"], "Runtime": ["logger"], "OnnxParser": ["network", "logger"],
                     "Logger": ["min_severity"], "IInt8EntropyCalibrator2": []},
    "datatype_attrs": {"float32": "FLOAT", "float16": "HALF", "bfloat16": "BF16", "int8": "INT8",
                       "int32": "INT32", "int64": "INT64", "bool": "BOOL", "uint8": "UINT8"},
    "severity_in": ("ILogger", "Logger"),
}
_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
       "BOOL": np.bool_, "UINT8": np.uint8}


def manifest(version: str) -> dict:
    return json.loads((API_DIR / f"{version}.json").read_text())


@dataclass(frozen=True)
class EnumValue:
    enum: str
    name: str
    value: int

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"{self.enum}.{self.name}"

    __str__ = __repr__


def _enum_class(name: str, values: list[str]) -> type:
    return type(name, (), {v: EnumValue(name, v, i) for i, v in enumerate(values)}
                | {"__members__": {v: EnumValue(name, v, i) for i, v in enumerate(values)}})


class ApiObject:
    """An instance of a class of the manifest: its methods record and ask the world; its properties
    hold what was set (or what the world gave)."""

    _api: dict = {}
    _trt: Any = None

    def __init__(self, *args, **kwargs) -> None:
        cls = type(self)._api_name
        params = SUPPLEMENT["constructors"].get(cls)
        if params is None:
            raise TypeError(f"tensorrt {self._trt.__version__}: {cls} cannot be constructed from Python")
        _check_args(f"{cls}.__init__", params, args, kwargs)
        object.__setattr__(self, "_values", {})
        self._trt.calls.append((f"{cls}.__init__", args, kwargs))
        init = self._trt.world.behaviour(f"{cls}.__init__")
        if init is not None:
            init(self, *args, **kwargs)

    @classmethod
    def _new(cls, **values) -> "ApiObject":
        obj = object.__new__(cls)
        object.__setattr__(obj, "_values", {})
        for k, v in values.items():
            obj._set(k, v)
        return obj

    def _set(self, name: str, value: Any) -> None:
        if name not in self._api["properties"] and not name.startswith("_"):
            raise AttributeError(f"tensorrt {self._trt.__version__}: {self._api_name} has no property {name!r}")
        self._values[name] = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        api = type(self)._api
        if name in api["methods"]:
            return _method(self, name, api["methods"][name])
        if name in api["properties"]:
            values = object.__getattribute__(self, "_values")
            if name in values:
                return values[name]
            getter = self._trt.world.behaviour(f"{self._api_name}.{name}")
            return getter(self) if getter is not None else None
        raise AttributeError(f"tensorrt {self._trt.__version__}: {self._api_name} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._api["properties"] and type(self) is not self._trt._classes[self._api_name]:
            object.__setattr__(self, name, value)  # a Python subclass's own attribute (a calibrator)
            return
        self._set(name, value)
        self._trt.calls.append((f"{self._api_name}.{name}=", value))


def _check_args(qualname: str, params: list[str], args: tuple, kwargs: dict) -> None:
    unknown = [k for k in kwargs if k not in params]
    if params and (unknown or len(args) > len(params)):
        raise TypeError(f"{qualname}() takes ({', '.join(params)}); got {len(args)} positional and "
                        f"keywords {sorted(kwargs)}")
    if not params and kwargs:
        raise TypeError(f"{qualname}() takes no keyword arguments (got {sorted(kwargs)})")


def _method(obj: ApiObject, name: str, params: list[str]) -> Callable:
    qualname = f"{obj._api_name}.{name}"

    def call(*args, **kwargs):
        _check_args(qualname, params, args, kwargs)
        obj._trt.calls.append((qualname, args, kwargs))
        fn = obj._trt.world.behaviour(qualname)
        return fn(obj, *args, **kwargs) if fn is not None else None

    call.__name__ = name
    return call


class TensorRTDouble(types.ModuleType):
    """The module: classes, enums and functions of one manifest, nothing else."""

    def __init__(self, version: str, world: "World") -> None:
        super().__init__("tensorrt")
        api = manifest(version)
        self.__version__ = VERSIONS[version]
        self.calls: list[tuple] = []
        self.world = world
        world.trt = self
        self._classes: dict[str, type] = {}
        for name, values in api["enums"].items():
            setattr(self, name, _enum_class(name, values))
        for name, spec in api["classes"].items():
            attrs: dict[str, Any] = {"_api": spec, "_api_name": name, "_trt": self}
            if name in SUPPLEMENT["severity_in"]:
                attrs.update({v: getattr(self.Severity, v) for v in api["enums"]["Severity"]})
                attrs["Severity"] = self.Severity
            if name == "IHostMemory":  # py::buffer_protocol
                attrs["__bytes__"] = lambda obj: bytes(obj._values["_data"])
                attrs["__len__"] = lambda obj: len(obj._values["_data"])
            cls = type(name, (ApiObject,), attrs)
            self._classes[name] = cls
            setattr(self, name, cls)
        for alias, value in SUPPLEMENT["datatype_attrs"].items():
            if value in api["enums"]["DataType"]:
                setattr(self, alias, getattr(self.DataType, value))
        for fname, params in api["functions"].items():
            setattr(self, fname, self._function(fname, params))

    def _function(self, fname: str, params: list[str]) -> Callable:
        def call(*args, **kwargs):
            _check_args(fname, params, args, kwargs)
            self.calls.append((fname, args, kwargs))
            fn = self.world.behaviour(fname)
            return fn(self, *args, **kwargs) if fn is not None else None

        call.__name__ = fname
        return call

    def new(self, cls: str, **values) -> ApiObject:
        """An object of class ``cls`` as TensorRT hands it out (not constructed from Python)."""
        return self._classes[cls]._new(**values)

    def nptype(self, dtype) -> type:  # tensorrt/__init__.py
        return _NP[dtype.name]

    def names(self) -> list[str]:
        """The recorded call names, in order (arguments left out)."""
        return [c[0] for c in self.calls]

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"tensorrt {self.__version__} has no attribute {name!r}")


@dataclass
class World:
    """A minimal TensorRT behind the double: ONNX -> layers, build -> JSON engine, engine -> context."""

    classes: int | None = None  # output classes of built engines (default: the ONNX output's)
    plugin_creators: set[tuple[str, str, str]] = field(default_factory=set)  # (name, version, namespace)
    fail_parse: bool = False
    trt: Any = None
    engines: list = field(default_factory=list)
    cudart: Any = None

    def behaviour(self, qualname: str) -> Callable | None:
        return getattr(self, "_" + qualname.replace(".", "__"), None)

    # -- builder ---------------------------------------------------------------------------------
    def _Builder__create_network(self, builder, flags=0):
        return self.trt.new("INetworkDefinition", num_layers=0, num_inputs=0, num_outputs=0,
                            _layers=[], _inputs=[], _flags=flags)

    def _Builder__create_builder_config(self, builder):
        return self.trt.new("IBuilderConfig", _profiles=[], _timing=None)

    def _Builder__create_optimization_profile(self, builder):
        return self.trt.new("IOptimizationProfile", _shapes={})

    def _IOptimizationProfile__set_shape(self, profile, input, min, opt, max):  # noqa: A002
        profile._values["_shapes"][input] = (tuple(min), tuple(opt), tuple(max))

    def _IBuilderConfig__add_optimization_profile(self, config, profile):
        config._values["_profiles"].append(profile)
        return len(config._values["_profiles"]) - 1

    def _IBuilderConfig__create_timing_cache(self, config, serialized_timing_cache):
        return self.trt.new("ITimingCache", _blob=bytes(serialized_timing_cache))

    def _IBuilderConfig__set_timing_cache(self, config, cache, ignore_mismatch):
        config._values["_timing"] = cache
        return True

    def _IBuilderConfig__get_timing_cache(self, config):
        return config._values["_timing"]

    def _ITimingCache__serialize(self, cache):
        return self.trt.new("IHostMemory", _data=cache._values["_blob"] + b"+timings")

    def _INetworkDefinition__get_input(self, network, index):
        return network._values["_inputs"][index]

    def _INetworkDefinition__get_layer(self, network, index):
        return network._values["_layers"][index]

    def _ILayer__set_output_type(self, layer, index, dtype):
        layer._values.setdefault("_output_types", {})[index] = dtype

    def _OnnxParser____init__(self, parser, network, logger):
        parser._values["_network"] = network

    def _OnnxParser__parse_from_file(self, parser, model):
        import onnx

        if self.fail_parse:
            parser._set("num_errors", 1)
            return False
        proto = onnx.load(model)
        network = parser._values["_network"]
        lt = self.trt.LayerType
        kinds = {"Conv": lt.CONVOLUTION, "Softmax": lt.SOFTMAX, "MatMul": lt.MATRIX_MULTIPLY,
                 "Relu": lt.ACTIVATION, "Add": lt.ELEMENTWISE}
        layers = [self.trt.new("ILayer", name=n.name, type=kinds.get(n.op_type, lt.SHUFFLE),
                               num_outputs=len(n.output)) for n in proto.graph.node]
        inp = proto.graph.input[0]
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in inp.type.tensor_type.shape.dim)
        out_dims = proto.graph.output[0].type.tensor_type.shape.dim
        network._values.update(_layers=layers, _inputs=[self.trt.new("ITensor", name=inp.name, shape=shape)],
                               _classes=out_dims[-1].dim_value, _plugins=[n.op_type for n in proto.graph.node
                                                                          if n.domain == "tsi"],
                               _io=_graph_io(proto), _onnx=str(model))
        network._set("num_layers", len(layers))
        network._set("num_inputs", 1)
        network._set("num_outputs", 1)
        return True

    def _OnnxParser__get_error(self, parser, index):
        return "the world was told to fail parsing"

    def _Builder__build_serialized_network(self, builder, network, config):
        inp = network._values["_inputs"][0]
        profiles = config._values["_profiles"]
        spec = {"input": list(inp.shape), "classes": self.classes or network._values["_classes"],
                "profiles": [{k: [list(s) for s in v] for k, v in p._values["_shapes"].items()} for p in profiles]}
        if len(network._values["_io"]) > 2:  # a step graph: its I/O as built, computed by onnxruntime
            spec.update(io=network._values["_io"], onnx=network._values["_onnx"])
        if any(d < 0 for d in inp.shape) and profiles:
            lo, _, hi = profiles[0]._values["_shapes"][inp.name]
            spec["profile_batch"] = [lo[0], hi[0]]
        return self.trt.new("IHostMemory", _data=json.dumps(spec).encode(), nbytes=len(json.dumps(spec)))

    def _get_plugin_registry(self, trt):
        return trt.new("IPluginRegistry")

    def _init_libnvinfer_plugins(self, trt, logger, namespace):
        return True

    def _IPluginRegistry__get_creator(self, registry, type, version, plugin_namespace):  # noqa: A002
        if (type, version, plugin_namespace) in self.plugin_creators:
            return self.trt.new("IPluginCreatorInterface")
        return None

    # -- runtime ---------------------------------------------------------------------------------
    def _Runtime__deserialize_cuda_engine(self, runtime, serialized_engine):
        try:
            spec = json.loads(bytes(serialized_engine))
        except ValueError:
            return None
        engine = self.trt.new("ICudaEngine", num_io_tensors=len(spec["io"]) if "io" in spec else 2, _spec=spec, _contexts=[])
        self.engines.append(engine)
        return engine

    @staticmethod
    def _io(engine) -> dict | None:
        io = engine._values["_spec"].get("io")
        return None if io is None else {t["name"]: t for t in io}

    def _ICudaEngine__get_tensor_name(self, engine, index):
        io = engine._values["_spec"].get("io")
        return io[index]["name"] if io else ("clip", "logits")[index]

    def _ICudaEngine__get_tensor_mode(self, engine, name):
        io = self._io(engine)
        is_input = io[name]["input"] if io else name == "clip"
        return self.trt.TensorIOMode.INPUT if is_input else self.trt.TensorIOMode.OUTPUT

    def _ICudaEngine__get_tensor_shape(self, engine, name):
        spec, io = engine._values["_spec"], self._io(engine)
        if io:
            return tuple(io[name]["shape"])
        return tuple(spec["input"]) if name == "clip" else (spec["input"][0], spec["classes"])

    def _ICudaEngine__get_tensor_dtype(self, engine, name):
        io = self._io(engine)
        dtype = io[name]["dtype"] if io else engine._values["_spec"].get("dtype", "float32")
        return {"float32": self.trt.float32, "float16": self.trt.float16}[dtype]

    def _ICudaEngine__get_tensor_profile_shape(self, engine, name, profile_index):
        spec = engine._values["_spec"]
        lo, hi = spec.get("profile_batch", [1, 1])
        rest = tuple(spec["input"][1:])
        return [(lo,) + rest, (lo,) + rest, (hi,) + rest]

    def _ICudaEngine__create_execution_context(self, engine):
        spec = engine._values["_spec"]
        ctx = self.trt.new("IExecutionContext", _engine=engine, _shape=tuple(spec["input"]), _addresses={},
                           _executed=0)
        engine._values["_contexts"].append(ctx)
        return ctx

    def _IExecutionContext__set_input_shape(self, ctx, name, shape):
        spec = ctx._values["_engine"]._values["_spec"]
        lo, hi = spec.get("profile_batch", [1, 1])
        io = self._io(ctx._values["_engine"])
        if io:  # a step engine: any input, its static dims kept, a dynamic batch inside the profile
            want = io.get(name)
            if (want is None or not want["input"] or len(shape) != len(want["shape"])
                    or any(d != -1 and d != s for d, s in zip(want["shape"], shape))
                    or (want["shape"][0] == -1 and not lo <= shape[0] <= hi)):
                return False
            ctx._values.setdefault("_shapes", {})[name] = tuple(shape)
            return True
        if len(shape) != 5 or not lo <= shape[0] <= hi or any(d not in (-1, s) for d, s in zip(spec["input"], shape)):
            return False
        ctx._values["_shape"] = tuple(shape)
        return True

    def _IExecutionContext__get_tensor_shape(self, ctx, name):
        io = self._io(ctx._values["_engine"])
        if io:  # a dynamic batch is -1 until set_input_shape binds it (outputs follow the frame's)
            from runtime.step_graph import FRAME_INPUT

            batch = ctx._values.get("_shapes", {}).get(FRAME_INPUT, io[FRAME_INPUT]["shape"])[0]
            return tuple(batch if d == -1 else d for d in io[name]["shape"])
        shape = ctx._values["_shape"]
        return shape if name == "clip" else (shape[0], ctx._values["_engine"]._values["_spec"]["classes"])

    def _IExecutionContext__set_tensor_address(self, ctx, name, memory):
        ctx._values["_addresses"][name] = memory
        return True

    def _IExecutionContext__execute_async_v3(self, ctx, stream_handle):
        from tests.runtime.fake_cudart import colour_model, onnx_step

        ctx._values["_executed"] += 1
        spec = ctx._values["_engine"]._values["_spec"]
        if "io" in spec:  # addresses as bound now (a CUDA graph keeps the ones it was captured with)
            shapes = {t["name"]: self._IExecutionContext__get_tensor_shape(ctx, t["name"]) for t in spec["io"]}
            self.cudart.launch(onnx_step(spec, dict(ctx._values["_addresses"]), shapes), stream_handle)
            return True
        run = colour_model(ctx._values["_addresses"], ctx._values["_shape"], spec["classes"],
                           spec.get("dtype", "float32"))
        self.cudart.launch(run, stream_handle)
        return True


def _graph_io(proto) -> list[dict]:
    """Every input and output of an ONNX graph: name, direction, static shape, float dtype."""
    dtypes = {1: "float32", 10: "float16"}

    def row(v, is_input: bool) -> dict:
        t = v.type.tensor_type
        return {"name": v.name, "input": is_input, "dtype": dtypes.get(t.elem_type, str(t.elem_type)),
                "shape": [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]}

    return [row(v, True) for v in proto.graph.input] + [row(v, False) for v in proto.graph.output]


def install(monkeypatch, version: str, world: World | None = None, cudart=None) -> TensorRTDouble:
    """Put the double of ``version`` in ``sys.modules`` as ``tensorrt`` (and a cudart stand-in as
    ``cuda.bindings.runtime`` when given)."""
    world = world or World()
    trt = TensorRTDouble(version, world)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    if cudart is not None:
        from tests.runtime.fake_cudart import install_cudart

        world.cudart = cudart
        install_cudart(monkeypatch, cudart)
    return trt
