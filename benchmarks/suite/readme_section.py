"""The accuracy-vs-latency section, written from a benchmark report JSON (no hand-typed figures).

``benchmarks.suite.results_doc`` puts it into ``docs/results.md`` (``python -m benchmarks.suite.results_doc``,
console script ``tsi-bench-readme``). Into another markdown file:

    python -m benchmarks.suite.readme_section --readme FILE [--json benchmarks/results/accuracy_latency.json]

The section runs from its heading (``## Benchmarks``) to the next ``## `` heading (or the end); it is
replaced if present, else added before ``## Layout`` (or at the end). Everything in it comes from
the JSON: the command and its duration, the machine and load, the TSI/TSN ratios, the best rows and
the Pareto PNG.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from benchmarks.suite.report import FORMAT, label, measured, pareto_front, paired_table

log = logging.getLogger(__name__)

HEADING = "## Benchmarks"


def section(report: dict, json_path: Path, readme_dir: Path, heading: str = HEADING,
            regenerate: str = "python -m benchmarks.suite.readme_section", schema: str = "docs/benchmarks.md") -> str:
    """The section's markdown. Links to the JSON's files are relative to ``readme_dir``, the folder of the
    file the section goes in; ``schema`` is the link to docs/benchmarks.md from there."""
    m = report["machine"]
    rel = lambda p: os.path.relpath(p, readme_dir).replace(os.sep, "/")  # noqa: E731
    json_path = json_path.resolve()
    md = json_path.with_suffix(".md")
    png = json_path.with_name(json_path.stem + "_pareto.png")
    lines = [heading, "",
             f"`{report['command']}` measured every model × T × precision × backend side by side on this machine in "
             f"{report['duration_s'] / 60:.0f} min ({'interrupted: partial' if report.get('interrupted') else 'complete'}); "
             f"full tables, absent rows with their reasons, and plots: [`{rel(md)}`]({rel(md)}) "
             f"(schema: [`docs/benchmarks.md`]({schema})).", "",
             f"Machine: `{m['cpu']}`, {m['usable_cpus']} CPUs, threads {report['settings']['threads']}; GPU: "
             f"{m['gpu'] or m['gpu_reason']}; TensorRT: {m['libraries'].get('tensorrt')}. Load average at start "
             f"{m['load_average_start']}, at end {report.get('load_average_end')}"
             + (f": {report['load_note']}." if report.get("load_note") else "."), ""]
    if report.get("paired"):
        lines += ["TSI/TSN throughput, calls alternating (paper: 0.54 on one GTX 1080 Ti):", ""]
        lines += paired_table(report["paired"]) + [""]
        if any(x.get("group") == "r50" for x in report["paired"]):
            lines += ["The R50 models have random weights (no trained R50 here): on a CPU TSI's attention time depends on "
                      "the scores' magnitude, so these ratios hold for these weights only "
                      f"([docs/benchmarks.md]({schema}), \"The committed runs\").", ""]
    pts = [r for r in measured(report["rows"]) if r["top1"] is not None]
    if pts:
        front = pareto_front([(r["latency_ms"]["p50"], r["top1"]) for r in pts])
        lines += [f"Pareto front of top-1 ({report['eval'].get('clips')} clips of {report['eval'].get('source')}) "
                  "against batch-1 latency:", "",
                  "| row | top-1 | p50 ms | clips/s (largest batch) | file |", "|---|---|---|---|---|"]
        for i in front:
            r = pts[i]
            tp = max(r["throughput"], key=lambda x: x["batch"])
            lines.append(f"| {label(r)} | {r['top1']:.1f} | {r['latency_ms']['p50']:.1f} | "
                         f"{tp['clips_per_s']:.1f} (b={tp['batch']}) | {r['file_bytes'] / 2**20:.1f} MB |")
        lines.append("")
    trained = [r for r in pts if r["weights"] == "trained"]
    if trained:
        lines += [f"The trained demo model on every backend that ran it (top-1 on {report['eval'].get('clips')} clips):", "",
                  "| row | top-1 | p50 / p95 ms (b=1) | clips/s (largest batch) | peak MiB | file |",
                  "|---|---|---|---|---|---|"]
        for r in trained:
            tp = max(r["throughput"], key=lambda x: x["batch"])
            mem = "—" if r["peak_mem_mib"] is None else f"{r['peak_mem_mib']:.0f}"
            lines.append(f"| {label(r)} | {r['top1']:.1f} | {r['latency_ms']['p50']:.1f} / {r['latency_ms']['p95']:.1f} | "
                         f"{tp['clips_per_s']:.1f} (b={tp['batch']}) | {mem} | {r['file_bytes'] / 2**20:.1f} MB |")
        lines.append("")
    demo_mha = next((r for r in trained if r["variant"] == "mha"), None)
    att = report.get("attention")
    if att and not att.get("reason"):
        p = att["profile"]
        text = (f"Saliency attention on onnxruntime CPU ({att['model']}, T={att['frames']}, {att['size']}², batch 1): "
                f"{100 * p['share']:.1f}% of the node time")
        if att.get("latency"):
            text += (f"; the `com.microsoft.MultiHeadAttention` variant (`export/ort_attention.py`) runs "
                     f"{att['latency']['speedup']:.2f}× the standard graph's speed ({att['latency']['standard_p50_ms']:.0f} → "
                     f"{att['latency']['mha_p50_ms']:.0f} ms p50); its parity with the standard graph on "
                     + (f"the trained demo model: {demo_mha['notes'].removeprefix('parity vs the standard graph: ')}"
                        if demo_mha else f"{att['model']}: {att.get('parity')}"))
        lines += [text + ".", ""]
    lines += [f"![accuracy vs latency]({rel(png)})", "",
              f"Regenerate this section from the JSON: `{regenerate}`.", ""]
    return "\n".join(lines)


def replace_section(readme: str, new: str) -> str:
    lines = readme.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == HEADING), None)
    if start is None:
        at = next((i for i, line in enumerate(lines) if line.strip() == "## Layout"), len(lines))
        return "\n".join(lines[:at] + new.splitlines() + [""] * (at < len(lines)) + lines[at:]) + "\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[:start] + new.splitlines() + [""] * (end < len(lines)) + lines[end:]) + "\n"


def main(argv: list[str] | None = None) -> int:
    from runtime.common.files import atomic_write_text

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/accuracy_latency.json"))
    p.add_argument("--readme", type=Path, required=True,
                   help="the markdown file to write the section into (docs/results.md is benchmarks.suite.results_doc's)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for f in (args.json, args.readme):
        if not f.is_file():
            log.error("error: %s not found", f)
            return 2
    try:
        report = json.loads(args.json.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        log.error("error: %s is not JSON (%s)", args.json, e)
        return 2
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        log.error("error: %s is not an accuracy_latency report", args.json)
        return 2
    text = replace_section(args.readme.read_text(encoding="utf-8"),
                           section(report, args.json, args.readme.resolve().parent))
    atomic_write_text(args.readme, text)
    log.info("wrote the %r section of %s from %s", HEADING, args.readme, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
