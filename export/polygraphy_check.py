"""The check of a built engine against FP32 with NVIDIA's Polygraphy, as the builder prints it.

Two ``polygraphy run`` calls over the clips the INT8 choice measured on (the held-out calibration
clips, ``calib.clips.split_clips``), fed by :func:`load_data` through Polygraphy's
``--data-loader-script``:

1. the FP32 graph on onnxruntime (``--onnxrt``), saving its logits (``--save-outputs``);
2. each reduced-precision graph on TensorRT (``--trt`` with its precision flags), loading those
   logits and comparing at the builder's logit-error bound: ``--check-error-stat max --atol
   <bound x the FP32 logit range> --rtol 0`` (every clip within it, as the builder's max over clips).

The other half of the builder's bound, top-1 agreement over the clips, is not a Polygraphy
comparison (Polygraphy fails a clip on any difference): the builder's report gives it. The same
commands with ``--onnxrt`` in place of the TensorRT flags run anywhere (tests/export/polygraphy_checks.py).
The loader reads the calibration folder and the model card from the environment
(:data:`ENV_CALIB_DIR`, :data:`ENV_CARD`, :data:`ENV_MAX_CLIPS`), which the printed commands set.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from export import names

ENV_CALIB_DIR = "TSI_CHECK_CALIB_DIR"
ENV_CARD = "TSI_CHECK_CARD"
ENV_MAX_CLIPS = "TSI_CHECK_MAX_CLIPS"
LOADER = "export/polygraphy_check.py"  # relative to the project's root, as the other printed commands
FP16_MAX_LOGIT_ERROR = 0.01  # of the FP32 logit range: FP16 keeps logits to about 1e-3 of it
# the TensorRT flags of each graph (10.x, 11.x)
TRT_FLAGS = {"fp16": ("--trt --fp16", "--trt --strongly-typed"), "int8": ("--trt --int8 --fp16", "--trt --strongly-typed")}


def load_data():
    """Polygraphy's data loader: the held-out calibration clips, one ``{input: (1, T, 3, S, S)}`` each."""
    from calib.clips import load_calibration_clips, split_clips
    from export.onnx_export import INPUT_NAME
    from runtime.card import ModelCard

    from runtime.card import CardError
    from runtime.common.errors import CalibrationError

    missing = [v for v in (ENV_CALIB_DIR, ENV_CARD) if not os.environ.get(v)]
    limit = os.environ.get(ENV_MAX_CLIPS, "")
    try:
        if missing:
            raise ValueError(f"{' and '.join(missing)} not set: run the commands as the build printed them")
        if limit and not limit.isdigit():
            raise ValueError(f"{ENV_MAX_CLIPS}={limit!r} is not a whole number")
        card = ModelCard.load(os.environ[ENV_CARD])
        clips = load_calibration_clips(os.environ[ENV_CALIB_DIR], card, max_clips=int(limit) if limit else None,
                                       progress=False).clips
    except (ValueError, OSError, CardError, CalibrationError) as e:  # one line, not a traceback in Polygraphy's
        print(f"error: {LOADER}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    for clip in split_clips(clips)[1]:
        yield {INPUT_NAME: clip[None]}


def check_commands(graphs: dict[str, Path], *, out: Path, name: str, calib_dir: Path, max_clips: int | None,
                   logit_range: float, int8_bound: float) -> list[str]:
    """The ``polygraphy run`` commands that check ``graphs`` (kinds -> paths in ``out``) against FP32;
    ``logit_range``: the FP32 logit range on the held-out clips, ``int8_bound``: the builder's
    logit-error bound (a fraction of that range)."""
    q = shlex.quote
    env = f"{ENV_CALIB_DIR}={q(str(calib_dir))} {ENV_CARD}={q(str(out / names.card_file(name)))}"
    if max_clips is not None:
        env += f" {ENV_MAX_CLIPS}={max_clips}"
    saved = q(str(out / f"{name}.fp32_outputs.json"))
    lines = [f"{env} polygraphy run {q(str(graphs['fp32']))} --onnxrt --data-loader-script {LOADER} "
             f"--save-outputs {saved}"]
    for kind, bound in (("fp16", FP16_MAX_LOGIT_ERROR), ("int8", int8_bound)):
        if kind not in graphs:
            continue
        flags, trt11 = TRT_FLAGS[kind]
        lines.append(f"{env} polygraphy run {q(str(graphs[kind]))} {flags} --data-loader-script {LOADER} "
                     f"--load-outputs {saved} --check-error-stat max --atol {bound * logit_range:.4g} --rtol 0"
                     f"   # TensorRT 11: {trt11}")
    return lines
