"""Samples per second of PGD-10 evaluation and PGD-AT training at ResNet scale, the harness vs a hand-written torch
loop on the same device, with and without bf16 autocast and channels_last. One table on stdout (and as JSON with
``--json``). Run by ``tests/gpu_check.sh`` on a CUDA machine; ``--dry`` runs every code path at a tiny size (on the
CPU too) so the script can be checked anywhere.

* PGD-10 evaluation: ``attacks/pgd.py`` through ``benchmark.estimator.wrap``, as the sweep calls it (numpy in and
  out), vs a hand-written L∞ PGD-10 loop (uniform random start, 2/255 steps at ε 8/255) that also takes the samples
  from the host and gives them back. The harness has no evaluation AMP: its bf16 row is the call inside
  ``torch.autocast``, as a user would run it.
* PGD-AT training: one epoch of the ``pgd-at`` defense (PGD-10 of 2/255 at 8/255; SGD 0.1, momentum 0.9, weight
  decay 5e-4, no augmentation; ``amp=bf16`` through the recipe) vs a hand-written epoch with the same optimiser,
  batches and steps.

Usage: python -m tests.gpu.speed [--dry] [--device cuda] [--budget-s 300] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tests.hand_loops import hand_pgd

SHAPE, CLASSES, EPS, STEP = (3, 32, 32), 10, 8 / 255, 2 / 255
MODELS = ("preact-resnet18", "wrn-28-10")


@dataclass(frozen=True)
class Size:
    """How much work one measurement does."""

    eval_samples: int
    eval_batch: int
    train_samples: int
    train_batch: int
    steps: int


FULL = Size(eval_samples=1024, eval_batch=256, train_samples=1024, train_batch=128, steps=10)
DRY = Size(eval_samples=2, eval_batch=2, train_samples=2, train_batch=2, steps=2)


@dataclass(frozen=True)
class Row:
    model: str
    amp: str
    channels_last: bool
    task: str
    harness: float  # samples/s; NaN when not measured
    hand: float

    @property
    def ratio(self) -> float:
        return self.hand / self.harness  # the harness's time over the hand-written loop's


def autocast(amp: str, device: str):
    return torch.autocast("cuda", dtype=torch.bfloat16) if amp == "bf16" else nullcontext()


def timed(run: Callable[[], object], device: str) -> float:
    """Seconds ``run`` takes, the device's queue drained before and after."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def build(name: str, device: str, channels_last: bool) -> torch.nn.Module:
    import benchmark as bench

    torch.manual_seed(0)
    model = bench.MODELS.get(name)()(SHAPE, CLASSES).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8), rng.integers(0, CLASSES, n).astype(np.int64)


def evaluation(name: str, device: str, amp: str, channels_last: bool, size: Size) -> tuple[float, float]:
    """(harness, hand-written) samples/s of PGD-``size.steps`` on ``size.eval_samples`` samples, after one warm-up
    batch each."""
    import benchmark as bench
    from benchmark.estimator import wrap
    from benchmark.runner import sample_keys

    model = build(name, device, channels_last)
    estimator = wrap(model, SHAPE, CLASSES, device)
    pixels, labels = data(size.eval_samples)
    x_np = pixels.astype(np.float32) / 255
    attack = bench.ATTACKS.get("pgd")(steps=size.steps, step_fraction=STEP / EPS)
    keys, batch = sample_keys(0, len(x_np)), size.eval_batch
    memory = torch.channels_last if channels_last else torch.contiguous_format
    x, y = torch.from_numpy(x_np), torch.from_numpy(labels)

    def harness(rows: slice = slice(None)):
        with autocast(amp, device):
            attack.generate(estimator, x_np[rows], labels[rows], eps=EPS, norm="inf", keys=keys[rows],
                            batch_size=batch)

    def hand(rows: slice = slice(None)):
        xs, ys = x[rows], y[rows]
        out = []
        with autocast(amp, device):
            for i in range(0, len(xs), batch):
                xb = xs[i : i + batch].to(device).contiguous(memory_format=memory)
                yb = ys[i : i + batch].to(device)
                out.append(hand_pgd(model, xb, yb, eps=EPS, step=STEP, steps=size.steps).cpu())
        return torch.cat(out).numpy()

    harness(slice(0, batch)), hand(slice(0, batch))  # warm-up: cuDNN's algorithm search, allocator
    return len(x_np) / timed(harness, device), len(x_np) / timed(hand, device)


def hand_epoch(model: torch.nn.Module, pixels: torch.Tensor, y: torch.Tensor, *, amp: str, device: str,
               channels_last: bool, size: Size) -> None:
    """One hand-written PGD-AT epoch: SGD 0.1, momentum 0.9, weight decay 5e-4, a seeded permutation's batches."""
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model.train()
    order = torch.randperm(len(pixels), generator=torch.Generator().manual_seed(0)).to(device)
    for start in range(0, len(pixels), size.train_batch):
        idx = order[start : start + size.train_batch]
        xb, yb = pixels[idx].float().div_(255).contiguous(memory_format=memory), y[idx]
        with autocast(amp, device):
            loss = F.cross_entropy(model(hand_pgd(model, xb, yb, eps=EPS, step=STEP, steps=size.steps)), yb)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()


def training(name: str, device: str, amp: str, channels_last: bool, size: Size) -> tuple[float, float]:
    """(harness, hand-written) samples/s of one PGD-AT epoch on ``size.train_samples`` samples, after a warm-up
    epoch on one batch each."""
    import benchmark as bench
    from benchmark.api import DataBundle, RunContext
    from benchmark.recipes import Recipe

    initial = build(name, device, channels_last)
    pixels, labels = data(size.train_samples)
    recipe = Recipe(optimiser="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, amp=amp)
    defense = bench.DEFENSES.get("pgd-at")(eps=EPS, step=STEP, steps=size.steps, epochs=1,
                                           batch_size=size.train_batch, lr=0.1)
    x, y = torch.from_numpy(pixels).to(device), torch.from_numpy(labels).to(device)

    def harness(n: int = len(pixels)):
        bundle = DataBundle(name="cifar-shaped", x_train=pixels[:n], y_train=labels[:n], x_test=pixels[:1],
                            y_test=labels[:1], nb_classes=CLASSES)
        defense.fit(copy.deepcopy(initial), bundle, RunContext(seed=0, device=device, recipe=recipe))

    def hand(n: int = len(pixels)):
        hand_epoch(copy.deepcopy(initial), x[:n], y[:n], amp=amp, device=device, channels_last=channels_last,
                   size=size)

    harness(size.train_batch), hand(size.train_batch)
    return len(pixels) / timed(harness, device), len(pixels) / timed(hand, device)


def configurations(device: str) -> list[tuple[str, str, bool]]:
    """(model, amp, channels_last) in the order measured: bf16 only on CUDA (the harness's AMP is CUDA autocast)."""
    amps = ("off", "bf16") if device.startswith("cuda") else ("off",)
    return [(model, amp, last) for model in MODELS for amp in amps for last in (False, True)]


def measure(device: str, size: Size, budget_s: float) -> list[Row]:
    """Every row of the table; rows past ``budget_s`` seconds are not measured (NaN)."""
    start, rows = time.perf_counter(), []
    for model, amp, last in configurations(device):
        for task, run in (("pgd-eval", evaluation), ("pgd-at-train", training)):
            if time.perf_counter() - start > budget_s:
                rows.append(Row(model, amp, last, task, float("nan"), float("nan")))
                continue
            harness, hand = run(model, device, amp, last, size)
            rows.append(Row(model, amp, last, task, harness, hand))
            print(f"measured {model} amp={amp} channels_last={last} {task}", file=sys.stderr, flush=True)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return rows


def table(rows: list[Row], device: str, size: Size) -> str:
    head = (f"{'model':<16} {'amp':<5} {'ch_last':<7} {'task':<13} {'harness/s':>10} {'hand/s':>10} "
            f"{'time ratio':>10}")
    lines = [f"device: {device_name(device)}; {size}", head, "-" * len(head)]
    for row in rows:
        lines.append(f"{row.model:<16} {row.amp:<5} {'yes' if row.channels_last else 'no':<7} {row.task:<13} "
                     f"{row.harness:>10.1f} {row.hand:>10.1f} {row.ratio:>9.3f}x")
    return "\n".join(lines)


def device_name(device: str) -> str:
    return torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="tiny sizes: check the script, measure nothing")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--budget-s", type=float, default=300.0, help="stop measuring new rows after this")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device here (use --dry --device cpu)")
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    size = DRY if args.dry else FULL
    rows = measure(args.device, size, args.budget_s)
    print(table(rows, args.device, size))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"device": device_name(args.device), "size": asdict(size),
                       "rows": [asdict(row) | {"ratio": row.ratio} for row in rows]}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
