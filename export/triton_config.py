"""A Triton Inference Server model configuration (``config.pbtxt``) for a model this project wrote:
its inputs and outputs (names, types, dims) as the graph has them, batching, instances, and the
model card in ``parameters`` (key :data:`runtime.card.ONNX_METADATA_KEY`, where the runtime's
Triton client reads it).

The configuration is built as Triton's own protobuf message (``tritonclient.grpc.model_config_pb2``,
the schema the server parses ``config.pbtxt`` with) and written in its text format, so a field that
is not in the schema cannot be written. A graph whose inputs and outputs all have a dynamic first
axis is served with batching (``max_batch_size`` > 0, dims without the batch axis, dynamic
batching); a static one (a fixed batch, or an online step graph: batch 1 and its state) with
``max_batch_size: 0`` and its full dims, and the batching options are refused for it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from runtime.card import ONNX_METADATA_KEY, ModelCard
from runtime.common.errors import ExportError

__all__ = ["BACKENDS", "DEFAULT_INSTANCES", "DEFAULT_MAX_BATCH", "DEFAULT_QUEUE_DELAY_US", "INSTANCE_KINDS",
           "ModelIO", "ServingOptions", "Tensor", "add_serving_options", "model_config", "model_config_text",
           "serving_options"]

DEFAULT_MAX_BATCH = 8  # clips per inference the server batches (a batched model)
DEFAULT_QUEUE_DELAY_US = 1000  # the dynamic batcher waits this long for more requests (a window is ~133 ms apart)
DEFAULT_INSTANCES = 1
INSTANCE_KINDS = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}
# model file suffix -> (Triton backend, file name in the version folder)
BACKENDS = {".onnx": ("onnxruntime", "model.onnx"), ".engine": ("tensorrt", "model.plan"),
            ".plan": ("tensorrt", "model.plan")}


@dataclass(frozen=True)
class Tensor:
    """One input or output: its name, Triton data type (``FP32``, ``FP16``) and dims (-1: dynamic)."""

    name: str
    dtype: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class ModelIO:
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]

    @property
    def batched(self) -> bool:
        """Every tensor has a dynamic first axis: the server may batch requests."""
        return all(t.dims and t.dims[0] == -1 for t in (*self.inputs, *self.outputs))


@dataclass(frozen=True)
class ServingOptions:
    """How the server runs the model. None: the default of a batched model (and not given)."""

    max_batch: int | None = None
    preferred: tuple[int, ...] = ()
    queue_delay_us: int | None = None
    instances: int = DEFAULT_INSTANCES
    kind: str = "gpu"


def add_serving_options(p: argparse.ArgumentParser) -> None:
    """The ``--triton-*`` options (tsi-build-engine --triton-repo and tsi-triton-repo)."""
    g = p.add_argument_group("Triton model repository")
    g.add_argument("--triton-max-batch", type=int, metavar="N",
                   help=f"max_batch_size of a dynamic-batch model (default {DEFAULT_MAX_BATCH})")
    g.add_argument("--triton-preferred-batch", metavar="N,N",
                   help="dynamic batching's preferred batch sizes (default: none, Triton forms the largest it can)")
    g.add_argument("--triton-queue-delay-us", type=int, metavar="US",
                   help=f"dynamic batching's max queue delay in microseconds (default {DEFAULT_QUEUE_DELAY_US})")
    g.add_argument("--triton-instances", type=int, default=DEFAULT_INSTANCES, metavar="N",
                   help="model instances (instance_group count, default %(default)s)")
    g.add_argument("--triton-instance-kind", choices=INSTANCE_KINDS, default="gpu",
                   help="where the instances run (default %(default)s)")


def serving_options(args: argparse.Namespace) -> ServingOptions:
    """The parsed ``--triton-*`` options, checked (:class:`ExportError` naming the option)."""
    preferred: tuple[int, ...] = ()
    if args.triton_preferred_batch is not None:
        try:
            preferred = tuple(int(v) for v in args.triton_preferred_batch.split(","))
        except ValueError:
            raise ExportError(f"--triton-preferred-batch must be sizes like 4,8 (got {args.triton_preferred_batch!r})") \
                from None
    opts = ServingOptions(args.triton_max_batch, preferred, args.triton_queue_delay_us, args.triton_instances,
                          args.triton_instance_kind)
    if opts.max_batch is not None and opts.max_batch < 1:
        raise ExportError(f"--triton-max-batch must be >= 1 (got {opts.max_batch})")
    top = opts.max_batch or DEFAULT_MAX_BATCH
    if any(not 1 <= b <= top for b in preferred):
        raise ExportError(f"--triton-preferred-batch sizes must be 1 to the max batch {top} (got {list(preferred)})")
    if opts.queue_delay_us is not None and opts.queue_delay_us < 0:
        raise ExportError(f"--triton-queue-delay-us must be >= 0 (got {opts.queue_delay_us})")
    if opts.instances < 1:
        raise ExportError(f"--triton-instances must be >= 1 (got {opts.instances})")
    return opts


def _pb2():
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as e:
        raise ExportError('a Triton model repository needs tritonclient: pip install ".[triton]"') from e
    return model_config_pb2


def model_config(name: str, backend: str, io: ModelIO, card: ModelCard, opts: ServingOptions):
    """The ``ModelConfig`` message of ``io`` served by ``backend`` (see the module docstring)."""
    pb = _pb2()
    cfg = pb.ModelConfig(name=name, backend=backend)
    if backend == "tensorrt":
        cfg.platform = "tensorrt_plan"
    if io.batched:
        cfg.max_batch_size = opts.max_batch or DEFAULT_MAX_BATCH
        cfg.dynamic_batching.preferred_batch_size.extend(opts.preferred)
        cfg.dynamic_batching.max_queue_delay_microseconds = (DEFAULT_QUEUE_DELAY_US if opts.queue_delay_us is None
                                                             else opts.queue_delay_us)
    else:
        given = [f for f, v in (("--triton-max-batch", opts.max_batch), ("--triton-preferred-batch", opts.preferred),
                                ("--triton-queue-delay-us", opts.queue_delay_us)) if v not in (None, ())]
        if given:
            raise ExportError(f"{name}: the model has a static batch axis (a fixed batch or an online step graph): "
                              f"{', '.join(given)} apply to a dynamic-batch model (tsi-build-engine --dynamic-batch)")
    for tensors, field in ((io.inputs, cfg.input), (io.outputs, cfg.output)):
        for t in tensors:
            dims = t.dims[1:] if io.batched else t.dims
            if any(d < 1 for d in dims):
                raise ExportError(f"{name}: {t.name} has dynamic dims {list(t.dims)} besides the batch axis: "
                                  "Triton needs them static")
            field.add(name=t.name, data_type=getattr(pb, "TYPE_" + t.dtype), dims=dims)
    cfg.instance_group.add(count=opts.instances, kind=getattr(pb.ModelInstanceGroup, INSTANCE_KINDS[opts.kind]))
    cfg.parameters[ONNX_METADATA_KEY].string_value = card.to_json()
    return cfg


def model_config_text(cfg) -> str:
    """``config.pbtxt``'s text (protobuf text format)."""
    from google.protobuf import text_format

    return text_format.MessageToString(cfg)
