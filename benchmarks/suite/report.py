"""The report: TSI/TSN ratios, the Pareto front, and the markdown tables, all from the rows."""

from __future__ import annotations

from typing import Any

PAPER_RATIO = {"ratio": 44.0 / 81.5, "tsi_vid_s": 44.0, "tsn_vid_s": 81.5, "frames": 8,
               "device": "one GTX 1080 Ti (paper, Table 5)"}
FORMAT, VERSION = "tsi-accuracy-latency", 1


def measured(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["status"] == "measured"]


def _config(r: dict) -> tuple:
    return (r["group"], r["frames"], r["backend"], r["device"], r["precision"], r["variant"])


def tsi_tsn_ratios(rows: list[dict]) -> list[dict]:
    """TSI / TSN throughput, same group, T, backend, device, precision and batch size, same run.
    (The attention variant's TSI row is compared with TSN's standard graph.)"""
    by = {(r["family"], *_config(r)): r for r in measured(rows)}
    out = []
    for (fam, group, t, backend, device, prec, variant), tsi in sorted(by.items()):
        if fam != "tsi":
            continue
        tsn = by.get(("tsn", group, t, backend, device, prec, "standard"))
        if tsn is None:
            continue
        tsn_tp = {x["batch"]: x["clips_per_s"] for x in tsn["throughput"]}
        for x in tsi["throughput"]:
            if x["batch"] in tsn_tp:
                out.append({"group": group, "frames": t, "size": tsi["size"], "backend": backend, "device": device,
                            "precision": prec, "variant": variant, "batch": x["batch"],
                            "tsi_clips_per_s": x["clips_per_s"], "tsn_clips_per_s": tsn_tp[x["batch"]],
                            "ratio": x["clips_per_s"] / tsn_tp[x["batch"]],
                            "tsi_gmacs": tsi["gmacs"], "tsn_gmacs": tsn["gmacs"]})
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower latency (x) and higher accuracy (y)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def accuracy_points(rows: list[dict]) -> list[dict]:
    return [r for r in measured(rows) if r["top1"] is not None]


def label(r: dict) -> str:
    v = "" if r["variant"] == "standard" else f" {r['variant']}"
    return f"{r['model']} T{r['frames']} {r['backend']} {r['precision']}{v}"


def _f(v, fmt: str = ".1f", none: str = "—") -> str:
    return none if v is None else format(v, fmt)


def _size(b) -> str:
    return "—" if b is None else f"{b / 2**20:.1f} MB"


def machine_lines(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items() if not str(v).startswith("absent"))
    absent = "; ".join(f"{k} {v}" for k, v in m["libraries"].items() if str(v).startswith("absent"))
    return [
        f"- Machine: {m['platform']}, CPU `{m['cpu']}`, {m['usable_cpus']} usable of {m['logical_cpus']} logical "
        f"CPUs, {_f(m['memory_gib'])} GiB; threads used: {report['settings']['threads']}",
        f"- GPU: {m['gpu'] or m['gpu_reason']}" + (f"; Jetson: {m['jetson']}" if m.get("jetson") else ""),
        f"- Libraries: Python {m['python']}, {libs}" + (f"; not available: {absent}" if absent else ""),
        f"- Load average (1/5/15 min) at start {m['load_average_start']}, at end {report.get('load_average_end')}"
        + (f" — {report['load_note']}" if report.get("load_note") else ""),
    ]


def rows_table(rows: list[dict]) -> list[str]:
    batches = sorted({x["batch"] for r in measured(rows) for x in r["throughput"] if x["batch"] > 1})
    head = ("| model | T | size | weights | backend | precision | top-1 | p50 / p95 ms (b=1) | "
            + " | ".join(f"clips/s b={b}" for b in batches) + " | peak MiB | file | GMACs |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in measured(rows):
        tp = {x["batch"]: x["clips_per_s"] for x in r["throughput"]}
        top1 = _f(r["top1"]) if r["top1"] is not None else "—"
        v = "" if r["variant"] == "standard" else f" ({r['variant']})"
        lines.append(f"| {r['model']} | {r['frames']} | {r['size']}² | {r['weights']} | {r['backend']}{v} | "
                     f"{r['precision']} | {top1} | {_f(r['latency_ms']['p50'])} / {_f(r['latency_ms']['p95'])} | "
                     + " | ".join(_f(tp.get(b), ".2f") for b in batches)
                     + f" | {_f(r['peak_mem_mib'], '.0f')} | {_size(r['file_bytes'])} | {_f(r['gmacs'], '.2f')} |")
    return lines


def absent_table(rows: list[dict]) -> list[str]:
    groups: dict[tuple, list[str]] = {}
    for r in rows:
        if r["status"] == "absent":
            key = (r["backend"], r["device"], r["precision"], r["variant"], r["reason"])
            groups.setdefault(key, []).append(f"{r['model']} T{r['frames']} {r['size']}²")
    lines = ["| backend | device | precision | rows | reason |", "|---|---|---|---|---|"]
    for (backend, device, prec, variant, reason), which in groups.items():
        v = "" if variant == "standard" else f" ({variant})"
        lines.append(f"| {backend}{v} | {device} | {prec} | {', '.join(which)} | {reason} |")
    return lines


def ratio_table(ratios: list[dict]) -> list[str]:
    lines = ["| size | T | backend | precision | batch | TSI clips/s | TSN clips/s | TSI/TSN |",
             "|---|---|---|---|---|---|---|---|"]
    for x in ratios:
        v = "" if x["variant"] == "standard" else f" ({x['variant']})"
        lines.append(f"| {x['group']} {x['size']}² | {x['frames']} | {x['backend']}{v} | {x['precision']} | {x['batch']} | "
                     f"{x['tsi_clips_per_s']:.2f} | {x['tsn_clips_per_s']:.2f} | **{x['ratio']:.2f}** |")
    return lines


def paired_table(paired: list[dict]) -> list[str]:
    lines = ["| size | T | backend | precision | batch | rounds | TSI clips/s | TSN clips/s | TSI/TSN | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for x in paired:
        if x.get("reason"):
            lines.append(f"| | | {x['backend']} | | | | | | absent: {x['reason']} | |")
            continue
        lines.append(f"| {x['group']} {x['size']}² | {x['frames']} | {x['backend']} | {x['precision']} | {x['batch']} | "
                     f"{x['rounds']} | {x['tsi']['clips_per_s']:.2f} | {x['tsn']['clips_per_s']:.2f} | "
                     f"**{x['ratio']:.2f}** | {x['loadavg'][0] if x.get('loadavg') else '—'} |")
    return lines


def attention_lines(att: dict | None) -> list[str]:
    if not att:
        return []
    if att.get("reason"):
        return ["## Saliency attention on onnxruntime CPU", "", f"Not measured: {att['reason']}", ""]
    p = att["profile"]
    lines = ["## Saliency attention on onnxruntime CPU", "",
             f"{att['model']} (T={att['frames']}, {att['size']}², batch 1), onnxruntime profiler over {p['runs']} runs: "
             f"attention nodes (MatMul-Softmax-MatMul) take **{100 * p['share']:.1f}%** of the node time "
             f"({p['attention_ms']:.1f} of {p['node_ms']:.1f} ms per run); by sequence length L (= H×W of the stage): "
             + ", ".join(f"L={k}: {v:.1f} ms" for k, v in p["by_length_ms"].items()) + "."]
    if att.get("mha_profile"):
        q = att["mha_profile"]
        lines.append(f"With the `com.microsoft.MultiHeadAttention` variant: attention {q['attention_ms']:.1f} ms of "
                     f"{q['node_ms']:.1f} ms node time per run ({100 * q['share']:.1f}%).")
    if att.get("latency"):
        a = att["latency"]
        lines.append(f"Batch-1 latency p50, standard graph {a['standard_p50_ms']:.1f} ms vs MultiHeadAttention variant "
                     f"{a['mha_p50_ms']:.1f} ms: **{a['speedup']:.2f}×**; parity: {att.get('parity')}.")
    return lines + [""]


def to_markdown(report: dict[str, Any], png_names: dict[str, str] | None = None) -> str:
    rows, ratios = report["rows"], report["ratios"]
    s = report["settings"]
    lines = [f"# Accuracy vs latency ({'quick' if report['quick'] else 'full'} run)", "",
             f"Command: `{report['command']}` — {report['duration_s'] / 60:.1f} min, started {report['started']}"
             + (" — **interrupted: partial results**" if report.get("interrupted") else ""), ""]
    lines += machine_lines(report) + [""]
    lines += [f"Latency: batch 1, {s['repeats']} timed runs after 1 warm-up (random input); throughput: clips/s at "
              f"each batch, timed for at least {s['min_time']} s after a warm-up; batch-1 throughput = 1 / mean latency. "
              f"Top-1: {report['eval'].get('source') or '—'}, one centre view per video, "
              f"{report['eval'].get('clips') or 0} clips; only trained weights get a top-1. Peak memory: the "
              "process's peak resident set above its resident set before the row (CPU). File: ONNX graph, or "
              "the state_dict for PyTorch. GMACs: one view, conv+fc+attention (`tsi.info`).", ""]
    lines += ["## TSI / TSN throughput (paper: 0.54 on one GTX 1080 Ti, 44.0 vs 81.5 clips/s at T=8)", ""]
    if report.get("paired"):
        lines += [f"Paired (TSN and TSI calls alternating, same batch, same minutes: the ratio least disturbed by other "
                  f"load on the machine; medians of the per-call times):", ""] + paired_table(report["paired"]) + [
                  "", "Per row (each model timed on its own; throughput at each batch):", ""]
    lines += ratio_table(ratios) if ratios else ["No TSI/TSN pair measured in this run."]
    lines += ["", "## Measured rows", ""] + rows_table(rows) + [""]
    lines += attention_lines(report.get("attention"))
    if report.get("trtexec"):
        lines += ["## trtexec (folded in with --trtexec-json)", ""]
        for t in report["trtexec"]:
            if t["kind"] == "times":
                lines.append(f"- `{t['source']}`: {t['inferences']} inferences, latency p50 {t['latency_ms']['p50']:.3f} / "
                             f"p95 {t['latency_ms']['p95']:.3f} ms"
                             + (f", GPU compute p50 {t['compute_ms']['p50']:.3f} ms" if "compute_ms" in t else "")
                             + (f", {t['throughput_qps']:.1f} inferences/s" if t.get("throughput_qps") else ""))
            else:
                top = ", ".join(f"{x['name']} {x['average_ms']:.3f} ms" for x in t["top_layers"][:5])
                lines.append(f"- `{t['source']}`: layer profile over {t['runs']} runs, {t['layers']} layers, "
                             f"{t['total_ms']:.3f} ms per run; slowest: {top}")
        lines.append("")
    lines += ["## Power", "", report["power"]["note"] if report.get("power") else "—", ""]
    lines += ["## Absent (not measured here, never estimated)", ""] + absent_table(rows) + [""]
    if png_names:
        lines += [f"![accuracy vs latency]({png_names['pareto']})", "",
                  f"![throughput vs batch size]({png_names['throughput']})", ""]
    return "\n".join(lines)
