"""The test Triton server (run by benchmarks/common/triton_server.py in the PyTriton venv, never
imported by the project): PyPI's nvidia-pytriton starts its bundled tritonserver, and every model of a model
repository written by ``export.triton_repo`` is served from its ``config.pbtxt`` (names, types,
dims, max_batch_size, dynamic batching, the card in ``parameters``) by a PyTriton callable that runs
``1/model.onnx`` in onnxruntime. What this serves is Triton's Python backend (PyTriton's), not the
full server's onnxruntime/tensorrt backends; the config is the same.

    python pytriton_serve.py --repo DIR --grpc-port P --http-port P --metrics-port P

Binds 127.0.0.1 only; prints "ready" once every model is loaded; serves until killed. PyTriton's
default protected endpoints (statistics, model-repository, ...) take the token in
$TSI_TRITON_ACCESS_TOKEN (header ``triton-access-token``; PyTriton makes up one if unset). Needs the
venv's Python (pytriton, numpy<2, onnxruntime, tritonclient's model_config_pb2)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from google.protobuf import text_format
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.models.model import Model
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig
from tritonclient.grpc import model_config_pb2 as pb

DTYPES = {pb.TYPE_FP32: np.float32, pb.TYPE_FP16: np.float16}
_PARAMETERS: dict[str, dict[str, str]] = {}  # model name -> the parameters of its config.pbtxt
_original = Model._get_triton_model_config  # PyTriton 0.7.0's (pinned by pytriton_venv.sh): no public hook


def _with_parameters(self):
    """PyTriton's generated config, with the repository's parameters (the model card) added."""
    cfg = _original(self)
    cfg.backend_parameters.update(_PARAMETERS.get(self.model_name, {}))
    return cfg


Model._get_triton_model_config = _with_parameters


def infer_fn(session: ort.InferenceSession, inputs: list[str], outputs: list[str], batched: bool):
    """A batched model's callable takes the batch PyTriton formed (``@batch``); an unbatched one
    (max_batch_size 0) each request of the list it is given."""
    def run(**feed):
        return dict(zip(outputs, session.run(outputs, feed)))

    def each(requests):
        return [run(**{n: r[n] for n in inputs}) for r in requests]
    return batch(run) if batched else each


def bind(triton: Triton, folder: Path) -> str:
    cfg = text_format.Parse((folder / "config.pbtxt").read_text(), pb.ModelConfig())
    session = ort.InferenceSession(str(folder / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    batched = cfg.max_batch_size > 0
    _PARAMETERS[cfg.name] = {k: v.string_value for k, v in cfg.parameters.items()}
    outputs = [o.name for o in cfg.output]
    db = cfg.dynamic_batching
    triton.bind(
        model_name=cfg.name,
        infer_func=infer_fn(session, [i.name for i in cfg.input], outputs, batched),
        inputs=[Tensor(name=i.name, dtype=DTYPES[i.data_type], shape=tuple(i.dims)) for i in cfg.input],
        outputs=[Tensor(name=o.name, dtype=DTYPES[o.data_type], shape=tuple(o.dims)) for o in cfg.output],
        config=ModelConfig(batching=batched, max_batch_size=cfg.max_batch_size,
                           batcher=DynamicBatcher(max_queue_delay_microseconds=db.max_queue_delay_microseconds,
                                                  preferred_batch_size=list(db.preferred_batch_size) or None)),
        strict=True,
    )
    return cfg.name


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repo", type=Path, required=True)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--metrics-port", type=int, required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = TritonConfig(http_address="127.0.0.1", http_port=args.http_port, grpc_address="127.0.0.1",
                          grpc_port=args.grpc_port, metrics_address="127.0.0.1", metrics_port=args.metrics_port)
    security = TritonSecurityConfig(access_token=os.environ.get("TSI_TRITON_ACCESS_TOKEN") or None)
    with Triton(config=config, security_config=security) as triton:
        names = [bind(triton, d) for d in sorted(args.repo.iterdir()) if (d / "config.pbtxt").is_file()]
        triton.run()
        print("ready", " ".join(names), flush=True)
        triton.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
