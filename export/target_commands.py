"""The commands that finish a build on the target (where TensorRT is), printed when it is absent.

First choice: ``export/build_engine.py --onnx <graph in --out>`` (writes the engine's model card
beside it and checks a calibration cache's key). The ``trtexec`` equivalents for the target's
TensorRT (JetPack 6: ``runtime.trt_version.TARGET_TRT``) follow, with the TensorRT 11 variant noted: trtexec options from the TensorRT 10
documentation (``--fp16``/``--int8``, ``--calib``, ``--staticPlugins``, ``--useDLACore``,
``--allowGPUFallback``, ``--memPoolSize=workspace:<MiB>``, ``--timingCacheFile``, ``--min/opt/maxShapes``,
``--stronglyTyped``, ``--saveEngine``).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from export import names
from export.trt_build import DEFAULT_BATCH_PROFILE, DEFAULT_WORKSPACE_MIB
from runtime.card import ModelCard


def build_engine_cmd(onnx: Path, out: Path, name: str, extra: list[str]) -> str:
    cmd = ["python", "export/build_engine.py", "--onnx", str(onnx), "--out", str(out), "--name", name, *extra]
    return " ".join(shlex.quote(c) for c in cmd)


def finish_commands(graphs: dict[str, Path], card: ModelCard, *, out: Path, name: str, fp16: bool, int8: bool,
                    calib_cache: bool, plugin: Path | None = None, dla_core: int | None = None,
                    workspace: int = DEFAULT_WORKSPACE_MIB, timing_cache: Path | None = None,
                    profile: tuple[int, int, int] | None = None, dynamic_batch: bool = False) -> list[str]:
    """``graphs`` maps kinds (``fp32``, ``fp32.plugin``, ``fp16``, ``int8``, ``int8.cache``, ...) to
    their paths in ``out``."""
    q = shlex.quote
    sfx = names.PLUGIN_TAG if plugin else ""
    extra: list[str] = []
    te: list[str] = []
    if plugin:
        extra += ["--plugin", str(plugin)]
        te.append(f"--staticPlugins={q(str(plugin))}")
    if dla_core is not None:
        extra += ["--dla-core", str(dla_core)]
        te += [f"--useDLACore={dla_core}", "--allowGPUFallback"]
    if workspace != DEFAULT_WORKSPACE_MIB:
        extra += ["--workspace", str(workspace)]
    te.append(f"--memPoolSize=workspace:{workspace}")
    if timing_cache:
        extra += ["--timing-cache", str(timing_cache)]
        te.append(f"--timingCacheFile={q(str(timing_cache))}")
    if profile:
        extra += ["--batch", ",".join(map(str, profile))]
    if dynamic_batch:
        lo, opt, hi = profile or DEFAULT_BATCH_PROFILE
        s = "x".join(map(str, card.input_shape))
        te.append(f"--minShapes=clip:{lo}x{s} --optShapes=clip:{opt}x{s} --maxShapes=clip:{hi}x{s}")
    opts = " ".join(te)

    def g(kind: str) -> str:
        return q(str(graphs[kind]))

    def engine(precision: str) -> str:
        return q(str(out / names.engine(name, precision)))

    cmds, trtexec = [], []
    if fp16:
        cmds.append(build_engine_cmd(graphs["fp16" + sfx], out, name, extra))
        trtexec.append(f"trtexec --onnx={g('fp32' + sfx)} --fp16 {opts} --saveEngine={engine('fp16')}"
                       f"   # TensorRT 11: --onnx={g('fp16' + sfx)} --stronglyTyped")
    if int8 and calib_cache:
        cmds.append(build_engine_cmd(graphs["fp32"], out, name, ["--int8", "--calib-cache", *extra]))
        trtexec.append(f"trtexec --onnx={g('fp32' + sfx)} --int8 --fp16 --calib={g('int8.cache')} {opts} "
                       f"--saveEngine={engine('int8')}   # TensorRT 10.x only (implicit INT8 is gone in 11)")
    elif int8:
        cmds.append(build_engine_cmd(graphs["int8" + sfx], out, name, extra))
        trtexec.append(f"trtexec --onnx={g('int8' + sfx)} --int8 --fp16 {opts} --saveEngine={engine('int8')}"
                       "   # TensorRT 11: --stronglyTyped instead of --int8 --fp16")
    if not (fp16 or int8):
        cmds.append(build_engine_cmd(graphs["fp32" + sfx], out, name, extra))
        trtexec.append(f"trtexec --onnx={g('fp32' + sfx)} {opts} --saveEngine={engine('fp32')}")
    return cmds + ["(or trtexec, which writes no model card: copy <name>.json to <name>.<precision>.json)"] + trtexec
