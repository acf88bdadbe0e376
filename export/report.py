"""The closing report of ``tsi-build-engine``: the files written, the parity notes, and, without
TensorRT, the commands that finish the job on the target."""

from __future__ import annotations

from pathlib import Path

from export.options import Options
from export.outputs import human_size
from runtime.card import ModelCard

NO_TENSORRT = ("No engine was built: TensorRT is not installed here (on a Jetson it comes with JetPack, on a "
               "desktop from NVIDIA's wheels). Finish on the target (JetPack 6: TensorRT 10.3), with this "
               "folder copied there:")


def report_lines(opts: Options, written: list[Path], graphs: dict[str, Path], notes: list[str], card: ModelCard,
                 have_trt: bool, derived: str | None, seconds: float) -> list[str]:
    lines = [f"done in {seconds:.1f}s; files written to {opts.out}:"]
    for p in sorted(set(written)):
        size = human_size(p.stat().st_size) if p.is_file() else "(folder)"
        lines.append(f"  {p.name:<40} {size:>10}")
    if not written:
        lines.append("  (none)")
    lines += [f"  {note}" for note in notes]
    if have_trt:
        return lines
    lines.append(NO_TENSORRT)
    from export.target_commands import build_engine_cmd, finish_commands

    if derived is not None:
        lines.append("  " + build_engine_cmd(opts.onnx, opts.out, opts.name,
                                             ["--plugin", str(opts.plugin)] if opts.plugin else []))
        return lines

    final = {k: opts.out / v.name for k, v in graphs.items()}
    lines += [f"  {c}" for c in finish_commands(
        final, card, out=opts.out, name=opts.name, fp16=opts.fp16, int8=opts.int8,
        calib_cache=opts.calib_cache, plugin=opts.plugin, dla_core=opts.dla_core,
        workspace=opts.workspace, timing_cache=opts.timing_cache, profile=opts.profile,
        dynamic_batch=opts.dynamic_batch)]
    return lines
