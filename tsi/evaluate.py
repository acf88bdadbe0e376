"""Evaluate a checkpoint: top-1/top-5, per-class accuracy, confusion matrix.

    python -m tsi.evaluate --checkpoint runs/exp/best.pt --data DIR [--views 1|30] [--out DIR]

Protocols (Sec. 4.2): 1 view = one clip of centre-sampled frames, centre crop; 30 views = 10
clips x 3 crops of the resized short side, scores averaged (softmax) over the views.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from runtime.common.files import OutputLockedError, atomic_write_text, exclusive, remove_stale_temps
from runtime.common.progress import progress_bar
from tsi.checkpoint import load_model
from tsi.data.datasets import FORMATS, build_dataset
from tsi.data.health import check_decodable
from tsi.cli import UsageError, cli_main, non_negative_int, output_folder, parser, positive_int
from tsi.model import view_probabilities

log = logging.getLogger("tsi.evaluate")


@torch.no_grad()
def predict(model: torch.nn.Module, loader: DataLoader, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (N, K) averaged over views, and the labels (N,)."""
    model.eval().to(device)
    probs, labels = [], []
    for clips, y in progress_bar(loader, desc="eval", leave=False, dynamic_ncols=True):
        clips = clips.to(device)
        probs.append(view_probabilities(model, clips).float().cpu().numpy())
        labels.append(y.numpy())
    return np.concatenate(probs), np.concatenate(labels)


def metrics(probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    k = probs.shape[1]
    order = np.argsort(-probs, axis=1)
    top1 = float(np.mean(order[:, 0] == labels) * 100)
    top5 = float(np.mean((order[:, : min(5, k)] == labels[:, None]).any(1)) * 100)
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (labels, order[:, 0]), 1)
    support = conf.sum(1)
    per_class = {name: (float(conf[i, i] / support[i] * 100) if support[i] else None)
                 for i, name in enumerate(class_names)}
    valid = [v for v in per_class.values() if v is not None]
    return {"clips": int(len(labels)), "top1": top1, "top5": top5,
            "mean_class_accuracy": float(np.mean(valid)) if valid else 0.0,
            "per_class": per_class, "confusion": conf.tolist()}


def plot_confusion(conf: np.ndarray, names: list[str], path: Path, title: str) -> Path:
    from tsi.plots import pyplot, save_png

    plt = pyplot()
    conf = np.asarray(conf, dtype=np.float64)
    norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    size = max(5.0, 0.45 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(names) <= 30:
        for i in range(len(names)):
            for j in range(len(names)):
                if conf[i, j]:
                    ax.text(j, i, int(conf[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    return save_png(fig, path, dpi=120)


def evaluate(checkpoint: str, data: str, *, fmt: str = "folder", split: str = "val",
             list_file: str | None = None, labels_file: str | None = None, views: int = 1,
             batch_size: int = 8, workers: int = 2, device: str = "auto",
             out: str | None = None, split_id: int = 1) -> dict[str, Any]:
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    mode = {1: "test", 30: "test30"}.get(views)
    if mode is None:
        raise UsageError(f"views must be 1 or 30 (got {views})")
    out_dir = output_folder(out, "--out") if out else None
    try:
        # a second evaluation into the same --out now is refused at once, before any work
        with exclusive(out_dir) if out_dir is not None else contextlib.nullcontext():
            return _evaluate(checkpoint, data, fmt=fmt, split=split, list_file=list_file,
                             labels_file=labels_file, views=views, batch_size=batch_size,
                             workers=workers, dev=dev, mode=mode, out_dir=out_dir, split_id=split_id)
    except OutputLockedError as e:  # (only exclusive raises it)
        raise UsageError(f"--out {e}") from None


def _evaluate(checkpoint: str, data: str, *, fmt: str, split: str, list_file: str | None,
              labels_file: str | None, views: int, batch_size: int, workers: int, dev: torch.device,
              mode: str, out_dir: Path | None, split_id: int) -> dict[str, Any]:
    model, card = load_model(checkpoint, map_location="cpu")
    ds = build_dataset(fmt, data, card=card, split=split, mode=mode, list_file=list_file,
                       labels_file=labels_file, split_id=split_id)
    if list(ds.classes) != list(card.labels):
        raise UsageError(f"the dataset's classes differ from the checkpoint's labels: "
                         f"{list(ds.classes)[:5]}... vs {list(card.labels)[:5]}...")
    dead = check_decodable(ds, "--list" if list_file else "--data", refuse_classes=False)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
    probs, labels = predict(model, loader, dev)
    res = metrics(probs, labels, list(card.labels))
    res.update(checkpoint=str(checkpoint), data=str(data), split=split, views=views,
               skipped_videos=ds.skipped, arch=card.arch, classes_without_a_decodable_video=dead,
               replaced_clips=ds.replaced_classes())
    for name, n in res["replaced_clips"].items():
        log.warning("%d clip(s) of class %r were replaced by other videos (theirs are undecodable): "
                    "the metrics score those twice", n, name)
    log.info("%s on %s (%d views): top-1 %.2f, top-5 %.2f, mean class %.2f over %d clips",
             card.arch, data, views, res["top1"], res["top5"], res["mean_class_accuracy"], res["clips"])
    if out_dir is not None:
        write_results(out_dir, res, list(card.labels), f"{split}_{views}view",
                      f"{card.arch} {split} ({views} view): top-1 {res['top1']:.1f}%")
    return res


def write_results(out_dir: Path, res: dict[str, Any], labels: list[str], stem: str, title: str) -> None:
    """The metrics JSON and the confusion PNG (the caller holds ``out_dir``'s lock, so temporaries an
    interrupted write of them left can be removed)."""
    files = (out_dir / f"eval_{stem}.json", out_dir / f"confusion_{stem}.png")
    for f in files:
        remove_stale_temps(f)
    atomic_write_text(files[0], json.dumps(res, indent=2))
    png = plot_confusion(np.array(res["confusion"]), labels, files[1], title)
    log.info("wrote %s", png)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """The CLI's work, returning its result (``main`` is the console script: exit code 0)."""
    p = parser("tsi-evaluate", __doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--format", default=FORMATS[0], choices=FORMATS)
    p.add_argument("--split", default="val")
    p.add_argument("--list", dest="list_file")
    p.add_argument("--labels", dest="labels_file")
    p.add_argument("--split-id", type=int, default=1, choices=[1, 2, 3], help="UCF101/HMDB51 official split")
    p.add_argument("--views", type=int, default=1, choices=[1, 30])
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--workers", type=non_negative_int, default=2)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", help="folder for eval JSON and confusion-matrix PNG")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    res = evaluate(a.checkpoint, a.data, fmt=a.format, split=a.split, list_file=a.list_file,
                   labels_file=a.labels_file, views=a.views, batch_size=a.batch_size,
                   workers=a.workers, device=a.device, out=a.out, split_id=a.split_id)
    print(json.dumps({k: v for k, v in res.items() if k not in ("confusion", "per_class")}, indent=2))
    return res


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv, "tsi-evaluate")


if __name__ == "__main__":
    sys.exit(main())
