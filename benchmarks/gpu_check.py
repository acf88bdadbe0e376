"""Every GPU measurement and check of the project in one command, within a time budget.

    python -m benchmarks.gpu_check                      # all parts, 480 s -> benchmarks/results/gpu_check.{md,json}
    python -m benchmarks.gpu_check --dry-run            # the plan: each part, what it runs, can it run here
    python -m benchmarks.gpu_check --parts throughput train --budget-s 300 --out /tmp/gpu.md

The parts (benchmarks/common/gpu_parts.py), in this order: environment; TSN/TSM/TSI-R50 forward
throughput (eager, CUDA graph, torch.compile; every attention implementation of TSI); the saliency
attention benchmark (benchmarks.attention_gpu, a subprocess); a mixed-precision training step of
TSI-R50; onnxruntime's CUDA provider against its CPU provider; the runtime's TensorRT backend.
Each gets its weight's share of the time left when it starts (time one part leaves goes to the
next). A part that cannot run here is recorded with the reason, one that fails with its error's
first line, and the next part runs. The report names the machine and the command; the JSON beside
it holds the same figures (the markdown is rendered from it) and both are rewritten after every
part. Exit status: 0, or 1 when a part failed; ``--dry-run`` runs nothing and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import gpu_parts
from benchmarks.common.gpu_parts import Context, PartFailed, one_line
from benchmarks.common.machine import machine_info

log = logging.getLogger("gpu_check")

RESULTS = Path("benchmarks") / "results"
DEFAULT_OUT, DEFAULT_PLAN = RESULTS / "gpu_check.md", RESULTS / "gpu_check_plan.md"
DEFAULT_BUDGET_S = 480.0


def parse_args(argv=None) -> argparse.Namespace:
    names = list(gpu_parts.PARTS)
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None,
                   help=f"markdown report, its JSON beside it (default {DEFAULT_OUT}; with --dry-run {DEFAULT_PLAN})")
    p.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="total time (%(default)s s)")
    p.add_argument("--parts", nargs="+", default=names, metavar="PART", help=f"a subset of: {', '.join(names)}")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls before each timing (%(default)s)")
    p.add_argument("--iters", type=int, default=20, help="timed calls; their median is reported (%(default)s)")
    p.add_argument("--dry-run", action="store_true", help="write the plan and whether each part can run here; run nothing")
    args = p.parse_args(argv)
    unknown = [x for x in args.parts if x not in gpu_parts.PARTS]
    if unknown:
        p.error(f"unknown part(s) {', '.join(unknown)}; the parts: {', '.join(names)}")
    if not args.budget_s > 0:
        p.error(f"--budget-s must be > 0 (got {args.budget_s})")
    if args.warmup < 0 or args.iters < 1:
        p.error(f"--warmup must be >= 0 and --iters >= 1 (got {args.warmup}, {args.iters})")
    args.parts = [n for n in names if n in args.parts]  # always in the parts' order, once each
    args.out = args.out or (DEFAULT_PLAN if args.dry_run else DEFAULT_OUT)
    if args.out.is_dir():
        p.error(f"--out {args.out} is a folder: give the report's file name")
    return args


def share(budget: float, names: list[str]) -> list[float]:
    """Each part's share of ``budget`` by its weight."""
    total = sum(gpu_parts.PARTS[n].weight for n in names)
    return [budget * gpu_parts.PARTS[n].weight / total for n in names]


def check(part) -> str | None:
    try:
        return part.check()
    except Exception as e:  # noqa: BLE001 - a check that breaks says so instead of a reason
        return f"its check failed: {one_line(e)}"


def plan(args, ctx: Context, command: str) -> dict:
    parts = []
    for name, budget in zip(args.parts, share(args.budget_s, args.parts)):
        part = gpu_parts.PARTS[name]
        reason = check(part)
        parts.append({"name": name, "what": part.what(ctx), "budget_s": round(budget, 1),
                      "status": ("can run" if reason is None else "cannot run here") if args.dry_run else "pending",
                      "reason": reason, "elapsed_s": None, "figures": None})
    return {"format": "tsi-gpu-check", "version": 1, "command": command, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "dry_run": args.dry_run, "budget_s": args.budget_s, "elapsed_s": None, "machine": machine_info(),
            "parts": parts}


def run_parts(report: dict, ctx: Context, write) -> None:
    """Run the pending parts in order, each within its share of the time left; ``write()`` after each."""
    t0 = time.monotonic()
    end = t0 + report["budget_s"]
    rows = report["parts"]
    for i, row in enumerate(rows):
        left = end - time.monotonic()
        if row["reason"] is not None:
            row.update(status="not run", budget_s=None)
        elif left <= 0:
            row.update(status="skipped", reason="the total budget was spent", budget_s=0.0)
        else:
            row["budget_s"] = round(share(left, [r["name"] for r in rows[i:] if r["reason"] is None])[0], 1)
            log.info("part %s: %.0f s", row["name"], row["budget_s"])
            ctx.deadline = time.monotonic() + row["budget_s"]
            start = time.monotonic()
            try:
                row.update(status="ok", figures=gpu_parts.PARTS[row["name"]].run(ctx))
            except PartFailed as e:
                row.update(status="failed", reason=str(e), figures=e.figures)
            except Exception as e:  # noqa: BLE001 - the part's failure is recorded; the next part runs
                log.exception("part %s failed", row["name"])
                row.update(status="failed", reason=one_line(e))
            row["elapsed_s"] = round(time.monotonic() - start, 1)
        log.info("part %s: %s%s", row["name"], row["status"], f" ({row['reason']})" if row["reason"] else "")
        report["elapsed_s"] = round(time.monotonic() - t0, 1)
        write()


# ---- the report ----------------------------------------------------------------------------------

def cell(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(cell(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k} {cell(x)}" for k, x in v.items())
    return str(v).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return (["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            + ["| " + " | ".join(cell(r.get(k)) for k in keys) + " |" for r in rows])


def figures_lines(figures: dict) -> list[str]:
    lines, tables = [], []
    for k, v in figures.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables += ["", f"{k}:", ""] + table(v)
        else:
            lines.append(f"- {k}: {cell(v)}")
    return lines + tables


def render(report: dict) -> str:
    m = report["machine"]
    libs = m["libraries"]
    lines = ["# GPU check", "", f"Command: `{report['command']}` ({report['date']}).", "",
             f"Machine: {m['gpu'] or m['gpu_reason']}; {m['cpu']} ({m['usable_cpus']} usable CPUs), "
             f"{cell(m['memory_gib'])} GiB; {m['platform']}; Python {m['python']}; "
             + ", ".join(f"{k} {libs[k]}" for k in ("torch", "triton", "onnxruntime", "tensorrt")) + ".", ""]
    if report["dry_run"]:
        lines += ["Plan only (`--dry-run`): nothing was measured.", ""]
    else:
        lines += [f"Budget {report['budget_s']:.0f} s; took {cell(report['elapsed_s'])} s.", ""]
    lines += table([{"part": r["name"], "what it runs": r["what"], "budget s": r["budget_s"], "status": r["status"],
                     "took s": r["elapsed_s"], "why": r["reason"]} for r in report["parts"]])
    for r in report["parts"]:
        if r["figures"]:
            lines += ["", f"## {r['name']}", ""] + figures_lines(r["figures"])
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> None:
    from runtime.common.files import atomic_write_text

    atomic_write_text(out.with_suffix(".json"), json.dumps(report, indent=1) + "\n")
    atomic_write_text(out, render(report))


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    command = shlex.join(["python", "-m", "benchmarks.gpu_check", *argv])
    with tempfile.TemporaryDirectory(prefix="gpu_check.") as work:
        ctx = Context(out=args.out, workdir=Path(work), warmup=args.warmup, iters=args.iters)
        report = plan(args, ctx, command)
        if args.dry_run:
            write_report(report, args.out)
            print(render(report), end="")
            return 0
        run_parts(report, ctx, lambda: write_report(report, args.out))
    log.info("wrote %s and %s", args.out, args.out.with_suffix(".json"))
    return 1 if any(r["status"] == "failed" for r in report["parts"]) else 0


if __name__ == "__main__":
    sys.exit(main())
