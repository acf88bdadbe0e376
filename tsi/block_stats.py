"""Per-block training statistics over the first epochs: where a stalled run's gradient goes.

``tsi-train --block-stats N`` records, every ``--block-stats-every`` steps of the first N epochs, one
JSON line per step in ``OUT/block_stats.jsonl``:

- ``loss``: the step's training loss;
- per part of the network (the stem; each residual block's ``head`` convs, temporal ``unit``
  (SME/CTI), ``tail`` conv+BN and ``shortcut``; the classifier ``fc``): the gradient norm ``g``,
  the weight norm ``w`` and their ratio (how far one step of plain SGD would move it);
- per block, the residual branch's scale: RMS of the branch output (after the last BN, whose gamma
  starts at 0 with zero-init) over RMS of the shortcut it is added to (``branch``), the last BN's
  mean |gamma| (``gamma``) and, for blocks with a temporal unit, RMS of the unit's output over its
  input (``unit``: 1 when SME/CTI change nothing).

``python -m tsi.block_stats OUT/block_stats.jsonl --out stats.png`` plots them (one panel each for
the loss, the gradient norms and the branch scales).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

from runtime.common.files import atomic_write_text
from tsi.backbone import Block
from tsi.cli import UsageError, cli_main, new_output_file, parser
from tsi.plots import pyplot, save_png

FILE = "block_stats.jsonl"


def _rms(t: torch.Tensor) -> float:
    return t.detach().float().pow(2).mean().sqrt().item()


def _epoch_of(line: str) -> float:
    """The epoch of one line of the file; infinity for a line that is not whole (a kill mid-write)."""
    try:
        return json.loads(line)["epoch"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return float("inf")


class BlockStats:
    """Hooks on ``model``'s blocks; :meth:`arm` before a step's forward, :meth:`record` after its
    backward (the gradients are read before the optimizer uses them). A run that starts at
    ``start_epoch`` (a resumed one) keeps the file's rows of the epochs before it and drops the
    rest: those of an epoch a stop dropped are recorded again."""

    def __init__(self, model: nn.Module, out: Path, every: int = 10, start_epoch: int = 0):
        self.out, self.every = out / FILE, max(1, every)
        if self.out.is_file():
            kept = [line for line in self.out.read_text(encoding="utf-8", errors="replace").splitlines()
                    if _epoch_of(line) <= start_epoch]
            atomic_write_text(self.out, "".join(line + "\n" for line in kept))
        self.blocks = {n.removeprefix("backbone."): m for n, m in model.named_modules() if isinstance(m, Block)}
        self.parts: dict[str, list[nn.Parameter]] = defaultdict(list)
        for name, p in model.named_parameters():
            self.parts[self._part(name.removeprefix("backbone."))].append(p)
        self._armed = False
        self._acts: dict[str, float] = {}
        for name, blk in self.blocks.items():
            blk.tail.register_forward_hook(self._hook(f"{name}.tail"))
            blk.shortcut.register_forward_hook(self._hook(f"{name}.shortcut", input_too=True))
            if blk.unit is not None:
                blk.unit.register_forward_hook(self._hook(f"{name}.unit", input_too=True))

    def _part(self, name: str) -> str:
        for bname in self.blocks:
            if name.startswith(bname + "."):
                sub = name[len(bname) + 1:].split(".")[0]
                return f"{bname}.{sub}"
        return name.split(".")[0]

    def _hook(self, key: str, input_too: bool = False):
        def hook(mod, inputs, output):
            if self._armed:
                self._acts[key] = _rms(output)
                if input_too:
                    self._acts[key + ".in"] = _rms(inputs[0])
        return hook

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def arm(self, step: int) -> None:
        self._armed = self.due(step)
        self._acts.clear()

    def record(self, epoch: int, step: int, loss: float) -> None:
        if not self._armed:
            return
        self._armed = False
        row: dict = {"epoch": epoch + 1, "step": step, "loss": loss, "parts": {}, "blocks": {}}
        for part, params in self.parts.items():
            g = sum(p.grad.detach().float().pow(2).sum().item() for p in params if p.grad is not None) ** 0.5
            w = sum(p.detach().float().pow(2).sum().item() for p in params) ** 0.5
            row["parts"][part] = {"g": g, "w": w, "ratio": g / w if w else None}
        for name, blk in self.blocks.items():
            a = self._acts
            short = a.get(f"{name}.shortcut")
            b = {"branch": a[f"{name}.tail"] / short if short else None,
                 "gamma": blk.tail[-1].weight.detach().abs().mean().item()}
            if blk.unit is not None and a.get(f"{name}.unit.in"):
                b["unit"] = a[f"{name}.unit"] / a[f"{name}.unit.in"]
            row["blocks"][name] = b
        self.out.parent.mkdir(parents=True, exist_ok=True)
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


class StatsFormatError(UsageError):
    """A block_stats.jsonl that is missing, empty or not written by :class:`BlockStats`."""


def read_stats(path: str | Path) -> list[dict]:
    if not Path(path).is_file():
        raise StatsFormatError(f"{path}: no such file")
    rows = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise StatsFormatError(f"{path}:{i}: not a JSON line of tsi.block_stats") from None
    if not rows or "parts" not in rows[0]:
        raise StatsFormatError(f"{path}: no block statistics in it (tsi-train --block-stats writes them)")
    return rows


def plot_stats(path: str | Path, out: str | Path, title: str = "") -> Path:
    plt = pyplot()
    rows = read_stats(path)
    steps_per_epoch = max(r["step"] for r in rows) + 1
    x = [(r["epoch"] - 1) * steps_per_epoch + r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].plot(x, [r["loss"] for r in rows])
    axes[0].set_title("training loss")
    for part in rows[0]["parts"]:
        axes[1].plot(x, [r["parts"][part]["g"] for r in rows], label=part, lw=1)
    axes[1].set_yscale("log")
    axes[1].set_title("gradient norm per part")
    for blk in rows[0]["blocks"]:
        axes[2].plot(x, [r["blocks"][blk]["branch"] or 0 for r in rows], label=blk.replace("stages.", "s"))
    axes[2].set_title("residual branch RMS / shortcut RMS")
    for ax in axes:
        ax.set_xlabel("step")
    axes[1].legend(fontsize=5, ncol=2)
    axes[2].legend(fontsize=6, ncol=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, out, dpi=100)


def main(argv: list[str] | None = None) -> int:
    p = parser("tsi-block-stats", __doc__)
    p.add_argument("stats", help="a run's block_stats.jsonl")
    p.add_argument("--out", required=True, help="PNG to write (replaced if it exists)")
    p.add_argument("--title", default="")

    def go(a: list[str] | None) -> int:
        args = p.parse_args(a)
        new_output_file(args.out, "--out")
        print(plot_stats(args.stats, args.out, args.title))
        return 0

    return cli_main(go, argv, "tsi-block-stats")


if __name__ == "__main__":
    sys.exit(main())
