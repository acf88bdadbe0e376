"""Checkpoint -> ONNX graphs -> TensorRT engines, one command.

    tsi-build-engine                                    # the demo checkpoint -> ./artifacts/demo
    python export/build_engine.py --int8                # the same, as a script (or python -m export.build_engine)
    tsi-build-engine --checkpoint run/best.pt --fp16 --int8 --calib-dir data/synth/train
    tsi-build-engine --onnx artifacts/demo/tsi_demo.int8.qdq.onnx   # on the Jetson

Pipeline (every stage logged with its time and the size of what it wrote; a failing stage is logged
and re-raised): checkpoint -> export-friendly model -> standard ONNX ``<name>.onnx`` (card inside,
also ``<name>.json``) -> onnxruntime vs PyTorch parity -> plugin variant ``<name>.plugin.onnx`` ->
precision graphs (``<name>.fp16.onnx``, ``<name>.int8.qdq.onnx`` or the keyed calibration cache
``<name>.int8.calib.cache``) -> ``export.trt_check`` on each graph -> with TensorRT: engines
``<name>.<precision>.engine`` with their card ``<name>.<precision>.json``; without TensorRT: exit 0 with
the list of files and the commands that finish the job on the target. ``--int8 --int8-target cpu``
makes the INT8 model for CPUs instead (``export.cpu_int8``: NNCF, an OpenVINO IR ``<name>.int8.cpu.xml``
with its card ``<name>.int8.cpu.json``), measured against the same bound.

The options are checked before any work starts. Everything is built in a staging folder inside
``--out`` and renamed into place at the end: a bad input (missing/corrupt checkpoint or ONNX, empty
or too small calibration folder, a card that does not match the checkpoint, ...) or an OS error
(read-only, no permission, disk full) exits with code 2, one line naming the problem, and leaves
``--out`` as it was. Files in ``--out`` made from another source are not replaced without ``--force``.
The build holds ``--out`` from start to end: a second build into it meanwhile is refused at once.
``--onnx`` needs neither torch nor (for the FP16/Q/DQ graphs) onnxruntime: it runs on a Jetson.
``--triton-repo DIR`` then writes a Triton model repository of what was built
(:func:`export.triton_repo.write_build`; docs/serving.md).
"""

from __future__ import annotations

import logging
import sys
import time

from export.names import output_names
from export.options import Options, build_parser, resolve
from export.outputs import check_out, claim_out, run_staged, user_errors
from runtime.common.errors import ExportError

log = logging.getLogger("export.build_engine")


INT8_LOSS_EXIT = 3  # the INT8 graph misses the bound (written and marked) and the loss was not accepted


def run(opts: Options) -> int:
    """Build everything ``opts`` asks for; returns 0, or :data:`INT8_LOSS_EXIT` (errors are raised)."""
    from export.pipeline import load_source, run_pipeline
    from export.report import check_lines, finish_lines, report_lines
    from runtime.trt_version import capabilities, tensorrt_available

    t0 = time.perf_counter()
    caps = capabilities() if tensorrt_available() else None
    if opts.plugin is not None and not opts.plugin.is_file():
        if caps is not None:
            raise ExportError(f"plugin library not found: {opts.plugin}")
        log.warning("plugin library %s is not here; the commands below need it on the target", opts.plugin)
    with claim_out(opts.out, output_names(opts.name)):  # held until the files are in place
        if opts.triton_repo is not None:
            from export.triton_repo import check_build_targets

            check_build_targets(opts.triton_repo, opts.name, force=opts.force)
        source_card, sha, derived = load_source(opts)
        keep = opts.onnx if opts.onnx is not None and (opts.out / opts.onnx.name).resolve() == opts.onnx.resolve() \
            else None
        check_out(opts.out, opts.name, sha, force=opts.force, keep=keep)
        (done, card), written = run_staged(
            opts.out, lambda stg: run_pipeline(opts, stg, source_card, sha, derived, caps), keep)
        if opts.triton_repo is not None:
            from export.triton_repo import write_build

            write_build(opts, derived)
    finish = [] if caps is not None else finish_lines(opts, done.graphs, card, derived)
    check = check_lines(opts, done.graphs, done.quantization or {}) if derived is None else []
    notes = done.notes + (check if caps is not None else [])  # with TensorRT here: the engines are built
    for line in report_lines(opts.out, written, notes, time.perf_counter() - t0,
                             finish=finish + (check if caps is None else [])):
        log.info("%s", line)
    q = done.quantization
    if q and not q["within_bound"] and not opts.accept_int8_loss:
        print(f"error: the INT8 graph misses the bound ({100 * q['top1_agreement']:.1f}% top-1 agreement, logit "
              f"error {q['logit_error']:.3f}; bound {opts.int8_bound}): written and marked in its card; pass "
              "--accept-int8-loss to accept it, or --calib-dir with clips like the deployment's"
              + (f"; last resort: tsi-train --finetune {opts.checkpoint} --qat {opts.out / done.graphs['int8'].name} ... (quantization-aware "
                 "fine-tuning, docs/export.md)" if opts.checkpoint is not None and "int8" in done.graphs else ""),
              file=sys.stderr)
        return INT8_LOSS_EXIT
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(description=__doc__).parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(resolve(args, argv_empty=not argv))
    except OSError as e:  # read-only, permission, disk full, ...: one line, nothing half-written
        log.debug("details", exc_info=True)
        print(f"error: {e.filename}: {e.strerror}" if e.filename and e.strerror else f"error: {e}",
              file=sys.stderr)
        return 2
    except user_errors() as e:
        # a bad input: one line naming the problem (a compatibility error lists its nodes below it)
        log.debug("details", exc_info=True)
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
