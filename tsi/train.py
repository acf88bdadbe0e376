"""Train a TSI-family network on a folder of videos: the paper's recipe (Sec. 4.2).

    python -m tsi.train --data DIR --arch tsi_r50 --out runs/exp1
    torchrun --nproc-per-node 4 -m tsi.train --data DIR ...        # multi-GPU / multi-node (DDP)

SGD (momentum 0.9, weight decay 5e-4), lr 0.01 per 64 clips scaled linearly with the global batch,
divided by 10 at epochs 30, 40, 45, 50 epochs; mixed precision on CUDA. One checkpoint per epoch,
written atomically (``last.pt``, and ``best.pt`` on the best validation top-1), holding the model
card the export side and the runtime read. ``--resume`` continues from ``last.pt`` exactly: the
data order, augmentation and dropout of every epoch are seeded from (seed, epoch), so a run killed
and resumed ends in the same state as one that was never interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import sys
import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from runtime.card import RESIZE_MODES, ModelCard
from runtime.common.files import OutputLockedError, atomic_write_text, exclusive, remove_stale_temps
from runtime.common.progress import progress_bar
from runtime.cli import ignore_stop_signals, install_stop_handlers
from tsi import find_lr, partial_bn
from tsi import init as tsi_init
from tsi import recipes
from tsi.block_stats import BlockStats
from tsi.checkpoint import CheckpointError, load_checkpoint, load_model, make_card, save_checkpoint
from tsi.cli import (UsageError, cli_main, fraction, non_negative_float, non_negative_int, output_folder, parser,
                     positive_float, positive_int, weight_below_one)
from tsi.config import ATTENTIONS, INPUT_MODES, field_defaults
from tsi.data.datasets import FORMATS, build_dataset
from tsi.data.health import check_classes, check_decodable, split_report, write_data_report
from tsi.data.transforms import TSN_SCALES
from tsi.model import MODELS, TSINet, create_model, view_probabilities
from tsi.pretrained import PretrainedError
from tsi.resume import apply_checkpoint, given_options
from tsi.warm_state import WarmStart, warm_loss

log = logging.getLogger("tsi.train")

# what a run writes into --out atomically (their interrupted writes' temporaries are removed)
RUN_FILES = ("last.pt", "best.pt", "log.csv", "data_report.json")


# -- distributed ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_arg: str) -> Dist:
    """Join the torchrun process group when launched by torchrun; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = device_arg == "cuda" or (device_arg == "auto" and torch.cuda.is_available())
    if device_arg == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    if world == 1:
        return Dist(device=torch.device("cuda" if use_cuda else "cpu"))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return Dist(rank, world, local_rank, device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TrainingStopped(Exception):
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP) arrived during an epoch: the epoch is dropped."""


def worker_init(worker_id: int) -> None:
    # the main process decides when to stop (it ends the workers): a signal sent to the whole
    # process group (Ctrl-C) or cgroup (systemd) must not kill a worker under the loader
    ignore_stop_signals()
    # each DataLoader worker gets its own numpy/random stream derived from torch's per-worker seed
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


# -- schedule ------------------------------------------------------------------------------------
def scaled_lr(base_lr: float, global_batch: int, reference_batch: int = 64) -> float:
    return base_lr * global_batch / reference_batch


def lr_at(epoch: int, lr: float, steps: list[int]) -> float:
    return lr * 0.1 ** sum(epoch >= s for s in steps)


def warmup_fn(epoch: int, steps_per_epoch: int, lr: float, warmup_epochs: float):
    """Per-step linear warm-up to ``lr`` over the first ``warmup_epochs`` epochs (None after it)."""
    total = warmup_epochs * steps_per_epoch
    if total <= 0 or epoch * steps_per_epoch >= total:
        return None
    return lambda step: lr * min(1.0, (epoch * steps_per_epoch + step + 1) / total)


# -- the loop ------------------------------------------------------------------------------------
def accuracy(logits: torch.Tensor, target: torch.Tensor, ks=(1, 5)) -> list[float]:
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hit = top.eq(target[:, None])
    return [hit[:, :k].any(dim=1).float().sum().item() for k in ks]


def run_epoch(model: nn.Module, loader: DataLoader, dist_: Dist, *, optimizer=None, scaler=None,
              clip_grad: float = 20.0, max_steps: int = 0, desc: str = "",
              lr_fn=None, stop: threading.Event | None = None, stats: BlockStats | None = None,
              epoch: int = 0, on_loss=None) -> dict[str, float]:
    """One pass over ``loader``; trains when ``optimizer`` is given. ``lr_fn(step)``, if given, sets
    the learning rate before each step (the warm-up). Raises :class:`TrainingStopped` at the first
    step after ``stop`` is set. ``stats`` records per-block statistics of the steps it is due at;
    ``on_loss(step, loss)``, if given, sees every step's loss and ends the pass by returning True."""
    train = optimizer is not None
    model.train(train)
    crit = nn.CrossEntropyLoss()
    totals = torch.zeros(4, dtype=torch.float64)  # loss*n, top1, top5, n
    amp = dist_.device.type == "cuda"
    bar = progress_bar(loader, desc=desc, enabled=dist_.main, leave=False, dynamic_ncols=True)
    for step, (clips, labels) in enumerate(bar):
        if stop is not None and stop.is_set():
            bar.close()
            raise TrainingStopped(getattr(stop, "signal_name", "stop"))
        if max_steps and step >= max_steps:
            break
        clips = clips.to(dist_.device, non_blocking=True)
        labels = labels.to(dist_.device, non_blocking=True)
        if stats is not None:
            stats.arm(step)
        with torch.set_grad_enabled(train), torch.autocast(dist_.device.type, torch.float16, enabled=amp):
            # multi-view clips (N, views, T, 3, H, W): log of the views' averaged scores
            logits = model(clips) if clips.dim() == 5 else view_probabilities(model, clips).log()
            if isinstance(logits, tuple):  # tsi.warm_state.WarmStart: scored on the warmed clips
                loss, logits = warm_loss(crit, logits, labels), logits[1]
            else:
                loss = crit(logits.float(), labels)
        value = loss.item()
        if train:
            if lr_fn is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr_fn(step)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            if stats is not None:
                stats.record(epoch, step, value)
            if clip_grad:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            scaler.step(optimizer)
            scaler.update()
        n = labels.shape[0]
        t1, t5 = accuracy(logits.detach().float(), labels)
        totals += torch.tensor([value * n, t1, t5, n], dtype=torch.float64)
        bar.set_postfix(loss=f"{totals[0] / totals[3]:.3f}", top1=f"{100 * totals[1] / totals[3]:.1f}")
        if on_loss is not None and on_loss(step, value):
            bar.close()
            break
    if dist_.world > 1:
        t = totals.to(dist_.device)
        dist.all_reduce(t)
        totals = t.cpu()
    n = max(totals[3].item(), 1.0)
    return {"loss": totals[0].item() / n, "top1": 100 * totals[1].item() / n,
            "top5": 100 * totals[2].item() / n, "clips": int(totals[3].item())}


def build_parser() -> argparse.ArgumentParser:
    # model and card defaults are read from TSIConfig and ModelCard: each is stated once, there
    cfg, card = field_defaults(), field_defaults(ModelCard)
    p = parser("tsi-train", __doc__)
    d = p.add_argument_group("data")
    d.add_argument("--data", required=True, help="dataset root (folder-per-class: DIR/train, DIR/val)")
    d.add_argument("--format", default=FORMATS[0], choices=FORMATS)
    d.add_argument("--split-id", type=int, default=1, choices=[1, 2, 3], help="UCF101/HMDB51 official split")
    d.add_argument("--train-list", help="list/annotation file of the training split (list, ssv2, kinetics)")
    d.add_argument("--val-list", help="list/annotation file of the validation split")
    d.add_argument("--labels", help="labels file (ssv2 labels JSON, or one label per line)")
    d.add_argument("--span-frames", type=non_negative_int, default=card["span_frames"],
                   help="source frames one clip covers in the live runtime (model card; at least "
                        "--frames): training clips of a longer video lie in a random window of this "
                        "many frames, validation takes the centred one; 0 = whole video (%(default)s)")
    d.add_argument("--fps", type=positive_float, default=card["fps"],
                   help="frame rate of the training videos (model card; %(default)s)")
    d.add_argument("--resize-short", type=non_negative_int, default=0,
                   help="short side before cropping (0: input size x 256/224)")
    d.add_argument("--resize", default=RESIZE_MODES[0], choices=RESIZE_MODES,
                   help="short_side: keep the aspect, crops cut the long side; square: squash the "
                        "whole frame, so an actor near a wide frame's edge stays in view (model card; "
                        "%(default)s)")
    d.add_argument("--flip", action="store_true", help="random horizontal flip (off: direction matters)")
    d.add_argument("--flip-map", help="JSON {label: label} swapped under a flip (e.g. left<->right)")
    d.add_argument("--workers", type=non_negative_int, default=min(8, os.cpu_count() or 1))
    d.add_argument("--crop-scales", type=fraction, nargs="+", default=list(TSN_SCALES),
                   help="multi-scale crop sides as fractions of the short side (TSN: 1 .875 .75 .66); "
                        "small or fast-moving objects: 1 .875 keeps them in the crop")
    d.add_argument("--mix-background", type=weight_below_one, default=0.0, metavar="M",
                   help="blend a static frame of another training video into every frame of a clip, "
                        "weight U(0, M): keeps the motion, breaks memorising backgrounds on small data "
                        "(tsi.data.datasets; %(default)s: off)")
    m = p.add_argument_group("model")
    m.add_argument("--arch", default="tsi_r50", choices=sorted(MODELS))
    m.add_argument("--frames", type=positive_int, default=cfg["frames"], help="T (%(default)s)")
    m.add_argument("--input-size", type=positive_int, default=cfg["input_size"], help="%(default)s")
    m.add_argument("--base-width", type=positive_int, default=cfg["base_width"], help="%(default)s")
    m.add_argument("--sme-reduction", type=positive_int, default=cfg["sme_reduction"], help="%(default)s")
    m.add_argument("--attention", default=cfg["attention"], choices=ATTENTIONS)
    m.add_argument("--input-mode", default=cfg["input_mode"], choices=INPUT_MODES,
                   help="what the stem sees: rgb, or diff, each sampled frame less the one before "
                        "(computed in the model, so exports and the runtime need nothing; %(default)s)")
    m.add_argument("--dropout", type=non_negative_float, default=cfg["dropout"], help="%(default)s")
    m.add_argument("--no-zero-init", action="store_true",
                   help="do not start residual branches at zero (their last BN gamma = 1)")
    m.add_argument("--causal", action="store_true",
                   help="causal model (every temporal op looks backwards): exportable online, tsi.streaming")
    m.add_argument("--warm-state", action="store_true",
                   help="with --causal: train each clip also after another clip of the batch, its state "
                        "carried, as online on continuous video (tsi.warm_state; twice the compute)")
    m.add_argument("--init", default=tsi_init.CHOICES[0], choices=tsi_init.CHOICES,
                   help="where a new run's weights start: the shipped motion initialisation of the arch "
                        "(motion), the model's own (scratch), or motion when one of this geometry is "
                        "shipped (auto, the default; see tsi/init.py)")
    m.add_argument("--finetune", help="initialise from this checkpoint (head re-initialised if classes differ)")
    m.add_argument("--qat", metavar="GRAPH",
                   help="quantization-aware fine-tuning of --finetune's model at the Q/DQ points of GRAPH, the "
                        "builder's INT8 graph of it (*.int8.qdq.onnx): the last resort when INT8 misses its bound "
                        "(docs/export.md)")
    m.add_argument("--pretrained", metavar="PATH",
                   help="ImageNet ResNet weights (torchvision/timm .pth/.pt/.safetensors) for the backbone; "
                        "SME/CTI and the head keep their own initialisation (see tsi/pretrained.py)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--recipe", default=recipes.CHOICES[0], choices=recipes.CHOICES,
                   help="paper: these defaults (Sec. 4.2); small: the small-data CPU recipe at the demo geometry, "
                        "on frame differences from scratch (tsi/recipes.py); options given keep their values")
    o.add_argument("--epochs", type=positive_int, default=50)
    o.add_argument("--batch-size", type=positive_int, default=8, help="clips per process")
    o.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"],
                   help="sgd: the paper's recipe; adamw: converges faster for small from-scratch runs")
    o.add_argument("--lr", type=positive_float, default=0.01, help="learning rate for a global batch of 64 clips")
    o.add_argument("--lr-steps", type=positive_int, nargs="*", default=[30, 40, 45])
    o.add_argument("--warmup-epochs", type=non_negative_float, default=0.0,
                   help="linear learning-rate warm-up over this many epochs, per step (0: none)")
    o.add_argument("--momentum", type=non_negative_float, default=0.9)
    o.add_argument("--weight-decay", type=non_negative_float, default=5e-4)
    o.add_argument("--partial-bn", action="store_true",
                   help="keep every BatchNorm layer but the first as initialised (statistics and affine "
                        "parameters): TSN's fine-tuning of a pretrained model on a small dataset (tsi/partial_bn.py)")
    o.add_argument("--clip-grad", type=non_negative_float, default=20.0)
    o.add_argument("--max-steps", type=non_negative_int, default=0, help="cap steps per epoch (smoke runs)")
    r = p.add_argument_group("run")
    r.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, log.csv, data_report.json "
                   "(one run at a time: a second one into it is refused)")
    r.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.pt: its model and card, and its recipe options unless given "
                        "again (see tsi/resume.py)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    r.add_argument("--eval-every", type=positive_int, default=1)
    g = p.add_argument_group("diagnosis (docs/training.md#when-training-stalls)")
    g.add_argument("--find-lr", action="store_true",
                   help="learning-rate range test instead of training: OUT/find_lr.csv and find_lr.png, "
                        "and the suggested --lr (tsi/find_lr.py)")
    g.add_argument("--find-lr-steps", type=positive_int, default=find_lr.STEPS, help="%(default)s")
    g.add_argument("--block-stats", type=non_negative_int, default=0, metavar="EPOCHS",
                   help="record per-block gradient and branch statistics over the first EPOCHS epochs "
                        "in OUT/block_stats.jsonl (tsi/block_stats.py; %(default)s: off)")
    g.add_argument("--block-stats-every", type=positive_int, default=10, help="steps (%(default)s)")
    return p


def make_datasets(args, card):
    train_ds = build_dataset(args.format, args.data, card=card, split="train", mode="train",
                             list_file=args.train_list, labels_file=args.labels, flip=args.flip,
                             flip_map=args.flip_map, seed=args.seed, split_id=args.split_id,
                             scales=args.crop_scales, mix_background=args.mix_background)
    val_ds = build_dataset(args.format, args.data, card=card, split="val", mode="test",
                           list_file=args.val_list, labels_file=args.labels, split_id=args.split_id)
    return train_ds, val_ds


def run(argv: list[str] | None = None, stop: threading.Event | None = None) -> dict[str, Any]:
    """The CLI's work, returning its result (``main`` is the console script). ``stop`` set (by a
    signal, :func:`main`) ends the run at the next step: the epoch in progress is dropped, and
    ``last.pt`` / ``best.pt`` / the logs stay as the last finished epoch wrote them (each written
    atomically), so ``--resume`` repeats that epoch exactly. The result then has ``stopped``."""
    args = build_parser().parse_args(argv)
    given = given_options(build_parser(), argv)
    recipe_line = recipes.apply(args, given)
    if 0 < args.span_frames < args.frames:
        raise UsageError(f"--span-frames {args.span_frames} is shorter than --frames {args.frames}: the "
                         "runtime would repeat frames; give at least T source frames, or 0 (whole video)")
    dist_ = setup_distributed(args.device)
    logging.basicConfig(level=logging.INFO if dist_.main else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = output_folder(args.out, "--out")
    # one run per --out: a second one is refused at once (the first's files stay intact); the
    # other ranks of a torchrun job write nothing there
    try:
        with exclusive(out) if dist_.main else contextlib.nullcontext():
            if dist_.main:
                for name in RUN_FILES:
                    remove_stale_temps(out / name)
            return _train(args, given, dist_, out, stop, recipe_line)
    except OutputLockedError as e:  # (only exclusive raises it)
        raise UsageError(f"--out {e}") from None


def _train(args, given: set[str], dist_: Dist, out: Path, stop: threading.Event | None,
           recipe_line: str | None = None) -> dict[str, Any]:
    last = out / "last.pt"
    if args.find_lr and args.resume:
        raise UsageError("--find-lr starts from the model's initial weights; it does not take --resume")
    if last.exists() and not args.resume and not args.find_lr:
        raise UsageError(f"{last} exists: pass --resume to continue it, or choose another --out")
    if args.resume and not last.exists():
        raise UsageError(f"--resume: no checkpoint to resume at {last}")

    # -- model, card and data
    seed_everything(args.seed)  # the initial weights too
    if args.resume:
        try:
            ckpt = load_checkpoint(last)
        except CheckpointError as e:
            raise UsageError(f"--resume: {e}; restore it (best.pt is the best epoch's) or start a new --out") from None
        apply_checkpoint(args, given, ckpt, str(last))
        model, card = load_model(last)
    else:
        ckpt = None
        overrides = dict(base_width=args.base_width, sme_reduction=args.sme_reduction,
                         attention=args.attention, dropout=args.dropout, input_mode=args.input_mode,
                         zero_init_residual=not args.no_zero_init, causal=args.causal)
        probe = build_dataset(args.format, args.data, card=None, split="train", mode="train",
                              list_file=args.train_list, labels_file=args.labels, labels_only=True,
                              split_id=args.split_id)
        labels = list(probe.classes)
        if args.pretrained and args.finetune:
            raise UsageError("--pretrained and --finetune both initialise the model; give one")
        try:
            model = create_model(args.arch, frames=args.frames, num_classes=len(labels),
                                 input_size=args.input_size, pretrained=args.pretrained, **overrides)
        except PretrainedError as e:
            raise UsageError(f"--pretrained: {e}") from None
        except ValueError as e:  # the config's own checks (tsi.config): options no model can have
            raise UsageError(f"--arch {args.arch} with these options: {e}") from None
        card = make_card(model.cfg, labels, resize_short=args.resize_short or None,
                         span_frames=args.span_frames, fps=args.fps, resize=args.resize)
        try:
            shipped, shipped_ckpt, why = tsi_init.resolve(args.init, args.arch, model.cfg,
                                                          other_init=bool(args.pretrained or args.finetune))
        except tsi_init.InitError as e:
            raise UsageError(str(e)) from None
        if dist_.main:
            log.info("weights: %s", why)
        if args.partial_bn and not (shipped or args.finetune or args.pretrained):
            raise UsageError(f"--partial-bn keeps the initial BatchNorm statistics, and this run starts "
                             f"{why}: give --init motion, --finetune or --pretrained, or drop --partial-bn")
        if args.finetune:
            init_from(model, args.finetune)
        elif shipped:
            init_from(model, shipped, shipped_ckpt)
        if args.recipe == "paper" and args.optimizer == "sgd" and not (shipped or args.finetune or args.pretrained) \
                and dist_.main:
            log.warning("the paper's recipe from scratch: the paper starts from ImageNet weights, and without "
                        "them SGD at its settings stays at chance on small data (docs/training.md#the-recipe); "
                        "--recipe small is the small-data recipe, --pretrained FILE loads ImageNet weights")
    if args.warm_state and not model.cfg.causal:
        raise UsageError("--warm-state trains a causal model's carried state: add --causal")
    qat = quantization_aware(args, model, card, ckpt)
    train_ds, val_ds = make_datasets(args, card)
    check_classes(train_ds, card.labels, "--train-list" if args.train_list else "--data")
    check_classes(val_ds, card.labels, "--val-list" if args.val_list else "--data")
    dead = {"train": check_decodable(train_ds, "--train-list" if args.train_list else "--data", refuse_classes=True),
            "val": check_decodable(val_ds, "--val-list" if args.val_list else "--data", refuse_classes=False)}
    model.to(dist_.device)
    if args.partial_bn:
        partial_bn.freeze_norms(model)
    params = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    if qat is not None:
        qat.quantizers.to(dist_.device)
        params.append({"params": list(qat.parameters()), "weight_decay": 0.0})
    net: nn.Module = WarmStart(model) if args.warm_state else model
    if dist_.world > 1:
        net = DistributedDataParallel(net, device_ids=[dist_.local_rank] if dist_.device.type == "cuda" else None)

    global_batch = args.batch_size * dist_.world
    lr = scaled_lr(args.lr, global_batch)
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=lr, momentum=args.momentum,
                                    weight_decay=args.weight_decay)
    else:  # AdamW: for small from-scratch runs (no ImageNet/Kinetics initialisation)
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=args.weight_decay)
    scaler = torch.amp.GradScaler(dist_.device.type, enabled=dist_.device.type == "cuda")
    start_epoch, best = 0, 0.0
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, best = int(ckpt["epoch"]) + 1, float(ckpt["best_top1"])
        log.info("resumed %s at epoch %d (best top-1 %.2f)", last, start_epoch, best)
    if dist_.main:
        if recipe_line:  # said once the data and the model are known good (a bad input stays one line)
            log.info("%s", recipe_line)
        log.info("%s: %d train clips, %d val clips, %d classes; global batch %d, lr %.4g, %d epochs",
                 card.arch, len(train_ds), len(val_ds), card.num_classes, global_batch, lr, args.epochs)

    if args.find_lr:
        return range_test(args, net, optimizer, scaler, train_ds, dist_, out, stop, card.arch)
    stats = (BlockStats(model, out, args.block_stats_every, start_epoch)
             if args.block_stats and dist_.main else None)
    history = []
    for epoch in range(start_epoch, args.epochs):
        loader = train_loader(train_ds, args, dist_, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(epoch, lr, args.lr_steps)
        t0 = time.time()
        try:
            tr = run_epoch(net, loader, dist_, optimizer=optimizer, scaler=scaler,
                           clip_grad=args.clip_grad, max_steps=args.max_steps,
                           desc=f"epoch {epoch + 1}/{args.epochs}", stop=stop, epoch=epoch,
                           stats=stats if epoch < args.block_stats else None,
                           lr_fn=warmup_fn(epoch, len(loader), lr_at(epoch, lr, args.lr_steps), args.warmup_epochs))
            train_s = time.time() - t0  # validation excluded
            evaluated = (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs
            va = evaluate_loader(net, val_ds, args, dist_, stop) if evaluated else {}
        except TrainingStopped as e:
            kept = f"{last} holds epoch {epoch}" if last.exists() else "no epoch had finished: nothing was saved"
            log.warning("stopped by %s during epoch %d: that epoch is dropped; %s (--resume continues "
                        "from there)", e, epoch + 1, kept)
            return {"history": history, "best_top1": best, "out": str(out), "stopped": str(e)}
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "time_s": train_s,
               **{f"train_{k}": v for k, v in tr.items()},
               "skipped_videos": train_ds.skipped, **{f"val_{k}": v for k, v in va.items()}}
        if evaluated:
            row["val_replaced_clips"] = val_ds.replaced
        if dist_.main:
            top1 = row.get("val_top1", -1.0)
            is_best = top1 > best
            best = max(best, top1)
            state = dict(epoch=epoch, best_top1=best, optimizer=optimizer.state_dict(),
                         scaler=scaler.state_dict(), args=vars(args))
            if qat is not None:
                state["qat"] = qat.state()
            save_checkpoint(last, model, card, **state)
            if is_best:
                save_checkpoint(out / "best.pt", model, card, **state)
            append_log(out, row)
            write_data_report(out, {"train": split_report(train_ds, dead["train"]),
                                    "val": split_report(val_ds, dead["val"])})
            log.info("epoch %d: %s", epoch + 1,
                     ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        history.append(row)
    if dist_.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    verdict = fit_verdict(history, len(train_ds))
    if verdict and dist_.main:
        log.warning("%s", verdict)
    return {"history": history, "best_top1": best, "out": str(out), "fit": verdict}


# a model of any size this project builds fits a few hundred clips; a run whose training top-1
# stays this far below is stalled, not merely overfitting
STALLED_TRAIN_TOP1 = 50.0
OVERFIT_GAP = 40.0  # train top-1 minus validation top-1, in points


def fit_verdict(history: list[dict[str, Any]], n_train: int) -> str:
    """One line on how the run fit its data ("" when nothing is wrong): stalled when the last
    epoch's training top-1 is below :data:`STALLED_TRAIN_TOP1`, overfitting when it is
    :data:`OVERFIT_GAP` points above validation."""
    if not history:
        return ""
    last = history[-1]
    train, val, epochs = last["train_top1"], last.get("val_top1"), last["epoch"]
    if train < STALLED_TRAIN_TOP1:
        return (f"training stalled: after {epochs} epochs the model fits only {train:.1f}% of its "
                f"{n_train} training clips (train top-1, augmented; a model this size can fit them "
                "all): an optimisation failure, not only a generalisation one; see tsi-train --find-lr "
                "and --block-stats (docs/training.md#when-training-stalls)")
    if val is not None and train - val > OVERFIT_GAP:
        return (f"overfitting: after {epochs} epochs train top-1 {train:.1f} vs validation {val:.1f}; "
                "the model learns its training clips, not the classes (more data, --init motion, "
                "or stronger regularisation)")
    return ""


def range_test(args, net: nn.Module, optimizer, scaler, train_ds, dist_: Dist, out: Path,
               stop: threading.Event | None, arch: str) -> dict[str, Any]:
    """``--find-lr``: one pass of :class:`tsi.find_lr.RangeTest` over the training data (cycled),
    nothing saved but its curve."""
    test = find_lr.RangeTest(args.find_lr_steps)
    global_batch = args.batch_size * dist_.world
    done = 0
    while done < test.steps and not test.diverged:
        loader = train_loader(train_ds, args, dist_, epoch=done)
        start = done

        def on_loss(step: int, loss: float) -> bool:
            test.add(start + step, loss)
            return start + step + 1 >= test.steps or test.diverged

        def lr_fn(step: int) -> float:
            return scaled_lr(test.lr(start + step), global_batch)

        try:
            run_epoch(net, loader, dist_, optimizer=optimizer, scaler=scaler, clip_grad=args.clip_grad,
                      desc=f"find-lr {done}/{test.steps}", stop=stop, lr_fn=lr_fn, on_loss=on_loss)
        except TrainingStopped as e:
            log.warning("stopped by %s during the range test after %d steps", e, len(test.points))
            return {"history": [], "best_top1": 0.0, "out": str(out), "stopped": str(e)}
        if len(test.points) == done:
            break
        done = len(test.points)
    result = {"history": [], "best_top1": 0.0, "out": str(out), "find_lr": [vars(p) for p in test.points]}
    if not dist_.main:
        return result
    try:
        found = test.suggestion()
    except ValueError as e:
        raise UsageError(f"--find-lr: {e} (the training split gives too few batches; lower --batch-size)") from None
    if (out / find_lr.CSV_NAME).exists():
        log.info("--find-lr: replacing the earlier range test's %s and %s in %s", find_lr.CSV_NAME,
                 find_lr.PNG_NAME, out)
    csv_path, png = test.write(out, f"{arch}: learning-rate range test ({len(test.points)} steps, "
                                    f"{args.optimizer}, batch {global_batch})")
    span = f"{len(test.points)} steps from --lr {test.points[0].lr:.3g} to {test.points[-1].lr:.3g}"
    if found is None:
        log.warning("range test, %s: the loss never fell %.0f%% below its start (%.3f) at any rate: a "
                    "plateau that no learning rate leaves in %d steps, not a rate problem "
                    "(docs/training.md#when-training-stalls; %s, %s)", span, 100 * find_lr.MIN_DROP,
                    test.points[0].smoothed, len(test.points), csv_path, png)
    else:
        log.info("range test, %s: steepest descent at --lr %.3g, minimum / 10 at --lr %.3g (for a global "
                 "batch of 64; %s, %s)", span, found[0], found[1], csv_path, png)
        result.update(suggested_lr=found[0], min_lr_tenth=found[1])
    result["loss_drop"] = test.drop
    return result


def train_loader(train_ds, args, dist_: Dist, epoch: int) -> DataLoader:
    """The shuffled training loader of ``epoch``. Everything random in the epoch derives from (seed,
    epoch, rank), and the global generators are seeded from it too: exact resume."""
    epoch_seed = args.seed * 1_000_003 + epoch * 1009 + dist_.rank
    seed_everything(epoch_seed)
    train_ds.set_epoch(epoch)
    sampler = DistributedSampler(train_ds, dist_.world, dist_.rank, shuffle=True,
                                 seed=args.seed) if dist_.world > 1 else None
    if sampler is not None:
        sampler.set_epoch(epoch)
    g = torch.Generator().manual_seed(epoch_seed)
    return DataLoader(train_ds, batch_size=args.batch_size, shuffle=sampler is None,
                      sampler=sampler, num_workers=args.workers, generator=g,
                      worker_init_fn=worker_init, drop_last=len(train_ds) >= args.batch_size,
                      pin_memory=dist_.device.type == "cuda", persistent_workers=False)


def evaluate_loader(net: nn.Module, val_ds, args, dist_: Dist,
                    stop: threading.Event | None = None) -> dict[str, float]:
    sampler = DistributedSampler(val_ds, dist_.world, dist_.rank, shuffle=False) if dist_.world > 1 else None
    loader = DataLoader(val_ds, batch_size=args.batch_size, shuffle=False, sampler=sampler,
                        num_workers=args.workers, worker_init_fn=worker_init)
    with torch.no_grad():
        return run_epoch(net, loader, dist_, desc="val", stop=stop)


def append_log(out: Path, row: dict[str, Any]) -> None:
    """Append one epoch to log.jsonl and rewrite log.csv (both small; the CSV atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "log.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line]
    keys = sorted({k for r in rows for k in r})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out / "log.csv", buf.getvalue())


def quantization_aware(args, model: TSINet, card, ckpt: dict | None):
    """The fake quantizers of ``--qat`` (``tsi.qat``), or of the fine-tuning being resumed; None without."""
    from tsi.qat import Qat, QatError, graph_points

    try:
        if ckpt is not None:
            return Qat(model, ckpt["qat"]["points"], ckpt["qat"]["graph"]) if ckpt.get("qat") else None
        if not args.qat:
            return None
        if not args.finetune:
            raise UsageError("--qat fine-tunes a trained model: give it with --finetune CHECKPOINT (the model GRAPH "
                             "was built from)")
        return Qat(model, graph_points(args.qat, card), Path(args.qat).name)
    except QatError as e:
        raise UsageError(str(e)) from None


def init_from(model: TSINet, path: str | Path, ckpt: dict | None = None) -> None:
    """Fine-tuning: copy every weight whose name and shape match (the head is skipped when the
    number of classes differs) from the checkpoint at ``path`` (``ckpt``: its contents, already
    loaded)."""
    src = (ckpt if ckpt is not None else load_checkpoint(path))["model"]
    own = model.state_dict()
    loaded = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(loaded))
    model.load_state_dict(loaded, strict=False)
    log.info("fine-tuning from %s: %d tensors loaded, %d kept fresh (%s)", path, len(loaded),
             len(skipped), ", ".join(skipped[:4]) + ("..." if len(skipped) > 4 else ""))


def main(argv: list[str] | None = None) -> int:
    """Ctrl-C, SIGTERM and SIGHUP stop training cleanly (see :func:`run`); the exit code is then
    128 + the signal's number, as a shell reports a process that signal ended."""
    stop = threading.Event()
    restore = install_stop_handlers(stop)

    def go(args: list[str] | None) -> int:
        result = run(args, stop)
        return 128 + int(getattr(signal, result["stopped"], signal.SIGINT)) if "stopped" in result else 0

    try:
        return cli_main(go, argv, "tsi-train")
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
