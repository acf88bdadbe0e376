"""The report's two figures (matplotlib, Agg): accuracy vs batch-1 latency with the Pareto front,
and throughput vs batch size."""

from __future__ import annotations

from pathlib import Path

from benchmarks.suite.report import accuracy_points, label, measured, pareto_front
from tsi.plots import pyplot, save_png


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    return save_png(fig, path)


def plot_pareto(rows: list[dict], path: Path, title: str) -> Path:
    """Top-1 against p50 latency of every measured row with a top-1; the Pareto front (no other
    row both faster and at least as accurate) joined and labelled."""
    plt = pyplot()
    pts = accuracy_points(rows)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if not pts:
        ax.text(0.5, 0.5, "no row with trained weights measured", ha="center", va="center", transform=ax.transAxes)
        return _save(fig, path)
    xy = [(r["latency_ms"]["p50"], r["top1"]) for r in pts]
    markers = {"pytorch-eager": "o", "pytorch-compiled": "s", "onnxruntime": "^", "openvino": "v", "tensorrt": "D"}
    colors = {"fp32": "tab:blue", "fp16": "tab:orange", "int8": "tab:green"}
    for r, (x, y) in zip(pts, xy):
        ax.scatter(x, y, marker=markers.get(r["backend"], "x"), color=colors.get(r["precision"], "gray"),
                   s=60, zorder=3, edgecolors="black" if r["variant"] != "standard" else "none")
    front = pareto_front(xy)
    ax.plot([xy[i][0] for i in front], [xy[i][1] for i in front], "--", color="crimson", zorder=2,
            label="Pareto front")
    for i in front:
        ax.annotate(label(pts[i]), xy[i], textcoords="offset points", xytext=(6, -10), fontsize=7)
    for b, m in markers.items():
        ax.scatter([], [], marker=m, color="gray", label=b)
    for p, c in colors.items():
        ax.scatter([], [], marker="o", color=c, label=p)
    ax.set_xscale("log")
    ax.set_xlabel("latency p50, batch 1 (ms, log)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_throughput(rows: list[dict], path: Path, title: str) -> Path:
    """Clips/s against batch size, one line per measured row, one panel per model size."""
    plt = pyplot()
    rows = measured(rows)
    groups = sorted({r["group"] for r in rows}) or ["—"]
    fig, axes = plt.subplots(1, len(groups), figsize=(6.5 * len(groups), 5), squeeze=False)
    styles = {"tsn": ":", "tsm": "-.", "tsi": "-"}
    for ax, g in zip(axes[0], groups):
        for r in (r for r in rows if r["group"] == g):
            tp = sorted(r["throughput"], key=lambda x: x["batch"])
            ax.plot([x["batch"] for x in tp], [x["clips_per_s"] for x in tp], styles.get(r["family"], "-"),
                    marker="o", markersize=3, label=label(r), linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size (clips)")
        ax.set_ylabel("throughput (clips/s, log)")
        ax.set_title(f"{g}: {title}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=5, ncol=2)
    return _save(fig, path)
