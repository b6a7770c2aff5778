"""Speed at ResNet scale on the CPU: ``preact-resnet18`` on CIFAR-shaped (3×32×32) random inputs, the harness vs the
floor, both timed in the same run (``tests/benchmarks/conftest.py``'s ``compare``).

* PGD-10 at ε 8/255 through ``attacks/pgd.py`` and ``benchmark.estimator.wrap``, as the sweep calls it, vs a
  hand-written torch PGD loop (same batch, steps, step size, a uniform random start, eval mode): ≤ 1.05×.
* One ``pgd-at`` epoch (the CIFAR inner maximisation: PGD-10 of 2/255 at 8/255, the loop's default recipe: Adam at a
  constant rate) vs a hand-written PGD-AT epoch with the same optimiser, batches and steps: ≤ 1.05×.
* ``suite:aa-standard`` through the sweep vs the same attacks run straight through ART's classes on the same samples:
  reported, not asserted.

With benchmarks disabled (the normal test run) each side runs once on a few samples, a smoke test of a few seconds.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import benchmark as bench
from benchmark.api import DataBundle, RunContext
from benchmark.estimator import wrap
from benchmark.runner import sample_keys
from tests.benchmarks.conftest import compare
from tests.hand_loops import hand_pgd

SHAPE, CLASSES, EPS, STEP, STEPS = (3, 32, 32), 10, 8 / 255, 2 / 255, 10
ATTACK_BATCH = 16


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/benchmarks/conftest.py


def resnet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return bench.MODELS.get("preact-resnet18")()(SHAPE, CLASSES)


def cifar_shaped(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random uint8 images 3×32×32 and labels, as CIFAR-10's binary files hold them."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8), rng.integers(0, CLASSES, n).astype(np.int64)


def test_pgd10_resnet_vs_hand_written(benchmark):
    n = 4 * ATTACK_BATCH if not benchmark.disabled else ATTACK_BATCH
    model = resnet()
    estimator = wrap(model, SHAPE, CLASSES, "cpu")  # eval mode, weights frozen: as the sweep gets it
    pixels, y_np = cifar_shaped(n)
    x_np = pixels.astype(np.float32) / 255
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    attack, keys = bench.ATTACKS.get("pgd")(steps=STEPS, step_fraction=STEP / EPS), sample_keys(0, n)
    results = {}

    def harness():
        results["harness"] = attack.generate(estimator, x_np, y_np, eps=EPS, norm="inf", keys=keys,
                                             batch_size=ATTACK_BATCH)

    def hand():
        results["hand"] = np.concatenate([
            hand_pgd(model, x[i : i + ATTACK_BATCH], y[i : i + ATTACK_BATCH], eps=EPS, step=STEP, steps=STEPS).numpy()
            for i in range(0, n, ATTACK_BATCH)])

    ratio = compare(benchmark, harness, hand, rounds=5)
    for side in results.values():  # both did the same work: perturbations at the edge of the same ball
        assert np.abs(side - x_np).max() == pytest.approx(EPS, abs=1e-6)
    benchmark.extra_info.update(samples=n, batch_size=ATTACK_BATCH)
    if ratio == ratio:  # measured (benchmarks enabled)
        assert ratio <= 1.05, f"harness PGD-10 on preact-resnet18 is {ratio:.3f}x the hand-written loop"


def hand_pgd_at_epoch(model: torch.nn.Module, pixels: torch.Tensor, y: torch.Tensor, *, lr: float,
                      batch_size: int, seed: int) -> None:
    """A hand-written PGD-AT epoch: Adam at ``lr``, the batches of a seeded permutation, PGD-10 of 2/255 at 8/255
    in train mode (as Madry et al. and the harness craft them), the uint8 pixels made float per batch."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    order = torch.randperm(len(pixels), generator=torch.Generator().manual_seed(seed))
    for start in range(0, len(pixels), batch_size):
        idx = order[start : start + batch_size]
        xb, yb = pixels[idx].float().div_(255), y[idx]
        loss = F.cross_entropy(model(hand_pgd(model, xb, yb, eps=EPS, step=STEP, steps=STEPS)), yb)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()


def test_pgd_at_epoch_resnet_vs_hand_written(benchmark):
    n, batch = (192, 64) if not benchmark.disabled else (8, 4)
    pixels, labels = cifar_shaped(n)
    data = DataBundle(name="cifar-shaped", x_train=pixels, y_train=labels, x_test=pixels[:2], y_test=labels[:2],
                      nb_classes=CLASSES)
    defense = bench.DEFENSES.get("pgd-at")(eps=EPS, step=STEP, steps=STEPS, epochs=1, batch_size=batch)
    initial = resnet()
    x, y = torch.from_numpy(pixels), torch.from_numpy(labels)
    trained = {}

    def harness():
        ctx = RunContext(seed=0)  # no recipe: the loop's default (Adam at a constant rate), as on digits
        trained["harness"] = defense.fit(copy.deepcopy(initial), data, ctx)
        trained["grad_evals"] = ctx.costs["train_grad_evals"]

    def hand():
        trained["hand"] = copy.deepcopy(initial)
        hand_pgd_at_epoch(trained["hand"], x, y, lr=defense.lr, batch_size=batch, seed=0)

    ratio = compare(benchmark, harness, hand, rounds=3)
    assert trained["grad_evals"] == (STEPS + 1) * n  # the same work: PGD-10 plus one weight update per sample
    moved = [max(float((p - q).detach().abs().max()) for p, q in zip(m.parameters(), initial.parameters(), strict=True))
             for m in (trained["harness"], trained["hand"])]
    assert min(moved) > 0, moved
    benchmark.extra_info.update(samples=n, batch_size=batch)
    if ratio == ratio:
        assert ratio <= 1.05, f"a pgd-at epoch of preact-resnet18 costs {ratio:.3f}x the hand-written one"


def art_direct_aa_standard(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    """``suite:aa-standard`` run straight through ART's classes with ART's own ``PyTorchClassifier`` (weights not
    frozen, as its documentation builds it): APGD-CE (100 iterations), APGD on the targeted DLR loss for each of
    the 9 most likely wrong classes (100 iterations each), Square (5,000 queries, p_init 0.8), as a cascade on the
    samples still robust. Returns the robust accuracy."""
    from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack
    from art.estimators.classification import PyTorchClassifier

    from attacks.apgd_targeted import TargetedDLRLoss, likely_wrong_classes, target_codes

    plain = copy.deepcopy(model)
    for parameter in plain.parameters():
        parameter.requires_grad_(True)
    common = {"input_shape": SHAPE, "nb_classes": CLASSES, "clip_values": (0.0, 1.0), "device_type": "cpu"}
    classifier = PyTorchClassifier(plain, loss=torch.nn.CrossEntropyLoss(), **common)
    targeted = PyTorchClassifier(plain, loss=TargetedDLRLoss(), **common)
    targeted._reduce_labels = targeted._int_labels = targeted._probability_labels = False
    apgd = {"norm": np.inf, "eps": EPS, "eps_step": 2 * EPS, "max_iter": 100, "targeted": False, "nb_random_init": 1,
            "batch_size": batch, "verbose": False}
    logits = classifier.predict(x, batch_size=batch)
    alive, x_adv = logits.argmax(1) == y, x.copy()
    targets = likely_wrong_classes(logits, y, CLASSES - 1)
    runs = [(AutoProjectedGradientDescent(classifier, loss_type="cross_entropy", **apgd), y)]
    runs += [(AutoProjectedGradientDescent(targeted, loss_type=None, **apgd), target_codes(y, targets[:, k], CLASSES))
             for k in range(CLASSES - 1)]
    runs.append((SquareAttack(classifier, norm=np.inf, max_iter=5000, eps=EPS, p_init=0.8, nb_restarts=1,
                              batch_size=batch, verbose=False), y))
    for attack, labels in runs:
        rows = np.flatnonzero(alive)
        if rows.size:
            x_adv[rows] = attack.generate(x=x[rows], y=labels[rows])
            alive[rows] = classifier.predict(x_adv[rows], batch_size=batch).argmax(1) == y[rows]
    return float(alive.mean())


def test_aa_standard_resnet_vs_art_direct(benchmark):
    """Reported, not asserted. The labels are the untrained model's own predictions, so every sample starts correct;
    its margins are tiny, so APGD-CE breaks every sample and APGD-T and Square get none: this measures APGD-CE's 100
    iterations (ART's APGD runs them all once it starts) and the cascade's overheads."""
    from benchmark.plugin_specs import expand_suites, parse_plugins
    from benchmark.sweep import run_sweep

    n = 8 if not benchmark.disabled else 1
    model = resnet()
    estimator = wrap(model, SHAPE, CLASSES, "cpu")
    x = cifar_shaped(n)[0].astype(np.float32) / 255
    y = estimator.predict(x).argmax(1)
    specs = parse_plugins("attack", expand_suites("suite:aa-standard", "inf", "test"), "test")
    attacks = {spec.label: spec.build() for spec in specs}
    results = {}

    def harness():
        sweep = run_sweep(estimator, x, y, attacks, (0.0, EPS), norm="inf", keys=sample_keys(0, n),
                          batch_size=ATTACK_BATCH)
        results["harness"] = sweep.accuracy()[EPS]
        results["attacked"] = {name: outcome.attacked for name, outcome in sweep.outcomes.items()}

    def art():
        results["art"] = art_direct_aa_standard(model, x, y, ATTACK_BATCH)

    ratio = compare(benchmark, harness, art, rounds=3)
    print(f"aa-standard robust accuracy: harness {results['harness']:.3f}, ART direct {results['art']:.3f}; "
          f"samples attacked per attack {results['attacked']}; harness/ART time = {ratio:.3f}x")
    # every sample starts correct, so APGD-CE runs on all of them; the same cascade reaches the same accuracy
    assert next(iter(results["attacked"].values())) == n, results
    assert results["harness"] == results["art"], results
    benchmark.extra_info.update(samples=n, art_direct_ratio=ratio, attacked=results["attacked"])
