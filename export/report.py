"""The closing report of a build (``tsi-build-engine``, ``python -m export.stream_export``): the files
written, the parity notes, and the commands that finish the job on the target."""

from __future__ import annotations

from pathlib import Path

from export.options import TENSORRT, Options
from export.outputs import human_size
from runtime.card import ModelCard
from runtime.trt_version import TARGET_TRT

NO_TENSORRT = ("No engine was built: TensorRT is not installed here (on a Jetson it comes with JetPack, on a "
               f"desktop from NVIDIA's wheels). Finish on the target (JetPack 6: TensorRT {TARGET_TRT}), with this "
               "folder copied there:")


def report_lines(out: Path, written: list[Path], notes: list[str], seconds: float, *, finish: list[str] = (),
                 heading: str = NO_TENSORRT) -> list[str]:
    """The files in ``out`` with their sizes, the notes, then (when there are any) ``heading`` and the
    ``finish`` commands."""
    lines = [f"done in {seconds:.1f}s; files written to {out}:"]
    for p in sorted(set(written)):
        size = human_size(p.stat().st_size) if p.is_file() else "(folder)"
        lines.append(f"  {p.name:<40} {size:>10}")
    if not written:
        lines.append("  (none)")
    lines += [f"  {note}" for note in notes]
    if finish:
        lines.append(heading)
        lines += [f"  {c}" for c in finish]
    return lines


def in_out(opts: Options, graphs: dict[str, Path]) -> dict[str, Path]:
    """``graphs`` (kinds -> staged paths) where the build leaves them: in ``--out``."""
    return {k: opts.out / v.name for k, v in graphs.items()}


def finish_lines(opts: Options, graphs: dict[str, Path], card: ModelCard, derived: str | None) -> list[str]:
    """The commands that build the engines of a clip build (or of an --onnx graph) on the target."""
    from export.target_commands import build_engine_cmd, finish_commands

    tensorrt_int8 = opts.int8 and opts.int8_target == TENSORRT
    if derived is None and opts.int8 and not (tensorrt_int8 or opts.fp16):
        return []  # --int8-target cpu alone: nothing for TensorRT to build
    if derived is not None:
        return [build_engine_cmd(opts.onnx, opts.out, opts.name, ["--plugin", str(opts.plugin)] if opts.plugin else [])]
    return finish_commands(
        in_out(opts, graphs), card, out=opts.out, name=opts.name, fp16=opts.fp16, int8=tensorrt_int8,
        calib_cache=opts.calib_cache, plugin=opts.plugin, dla_core=opts.dla_core,
        workspace=opts.workspace, timing_cache=opts.timing_cache, profile=opts.profile,
        dynamic_batch=opts.dynamic_batch)


def check_lines(opts: Options, graphs: dict[str, Path], quantization: dict) -> list[str]:
    """The Polygraphy commands that check the engines against FP32 on the held-out calibration clips
    (``export.polygraphy_check``); none without an INT8 choice (no calibration clips, no range)."""
    from export import names
    from export.polygraphy_check import check_commands

    if not quantization.get("logit_range") or "int8" not in graphs:
        return []
    calib = opts.calib_dir if opts.calib_dir is not None else names.demo_calibration_videos(opts.out)
    return ["Check the engines against FP32 with Polygraphy (the held-out calibration clips; the logit-error half "
            "of the INT8 bound, its top-1 half is in the report above):",
            *check_commands(in_out(opts, graphs), out=opts.out, name=opts.name, calib_dir=calib,
                            max_clips=opts.calib_clips,
                            logit_range=quantization["logit_range"], int8_bound=quantization["max_logit_error"])]
