"""Training recipes (``benchmark.recipes``) and the shared loop that follows them (``defenses/_train.py``)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import benchmark as bench
from benchmark.api import RunContext
from benchmark.cli import main
from benchmark.config import build_config, parse_plugins
from benchmark.errors import ConfigError
from benchmark.plan import plan
from benchmark.recipes import FIELDS, PAPERS, Recipe, RecipeOverrides, learning_rate
from benchmark.store import Store
from defenses import _train


def test_schedules_give_the_papers_rates_at_given_steps():
    piecewise = Recipe(lr=0.1, schedule="piecewise")  # Rice et al.: ×0.1 at 1/2 and 3/4 of 200 epochs
    assert learning_rate(piecewise, 0.5, 200) == 0.1
    assert learning_rate(piecewise, 99.99, 200) == 0.1
    assert learning_rate(piecewise, 100.0, 200) == pytest.approx(0.01)
    assert learning_rate(piecewise, 149.9, 200) == pytest.approx(0.01)
    assert learning_rate(piecewise, 150.0, 200) == pytest.approx(0.001)
    trades = Recipe(lr=0.1, schedule="piecewise", milestones=(100 / 110, 105 / 110))
    assert [learning_rate(trades, t, 110) for t in (99.5, 100.0, 105.0)] == pytest.approx([0.1, 0.01, 0.001])
    cyclic = Recipe(lr=0.2, schedule="cyclic")  # 0 → 0.2 at 2/5 of training → 0
    assert [learning_rate(cyclic, t, 10) for t in (1, 2, 4, 7, 10)] == pytest.approx([0.05, 0.1, 0.2, 0.1, 0.0])
    half = dataclasses.replace(cyclic, cyclic_peak=0.5)
    assert [learning_rate(half, t, 10) for t in (2.5, 5, 7.5)] == pytest.approx([0.1, 0.2, 0.1])
    cosine = Recipe(lr=0.1, schedule="cosine")
    assert [learning_rate(cosine, t, 8) for t in (0, 4, 8)] == pytest.approx([0.1, 0.05, 0.0])
    assert learning_rate(Recipe(lr=3e-4), 17.5, 40) == 3e-4


def test_the_loop_sets_the_schedule_s_rate_before_every_step(synthetic, monkeypatch):
    seen, set_lr = [], _train.set_lr

    def spy(optimiser, lr):
        seen.append(lr)
        set_lr(optimiser, lr)

    monkeypatch.setattr(_train, "set_lr", spy)
    recipe = Recipe(optimiser="sgd", lr=0.3, schedule="cyclic")
    fit("standard", synthetic, recipe, epochs=3, lr=0.3)  # the defense's epochs, lr and batch size are the recipe's
    batches = -(-len(synthetic.y_train) // recipe.batch_size)  # 240 samples in batches of 128: 2 per epoch
    assert seen == [learning_rate(recipe, epoch + (batch + 1) / batches, 3) for epoch in range(3)
                    for batch in range(batches)]
    assert len(set(seen)) == 6 and seen[-1] == 0.0


def fit(name, data, recipe, *, epochs, seed=0, **params):
    torch.manual_seed(seed)
    model = bench.MODELS.get("mlp")(data.input_shape, data.nb_classes)
    ctx = RunContext(seed=seed, recipe=recipe)
    defense = bench.DEFENSES.get(name)(epochs=epochs, **params)
    return defense.fit(model, data, ctx), ctx


def images(n=64, size=6, channels=2):
    """A batch whose every pixel value is unique (and > 0), so where each output pixel came from can be read."""
    values = np.arange(1, n * channels * size * size + 1, dtype=np.float32) / (n * channels * size * size)
    return torch.from_numpy(values.reshape(n, channels, size, size))


def crops(image, padding):
    """Every crop-and-maybe-flip of one image: (dy, dx, flipped) → tensor."""
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    size = image.shape[-1]
    out = {}
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[:, dy : dy + size, dx : dx + size]
            out[dy, dx, False], out[dy, dx, True] = crop, crop.flip(-1)
    return out


def test_crop_flip_is_a_seeded_random_crop_and_flip_per_sample():
    x = images()
    first = _train.augmenter(Recipe(augmentation="crop-flip", crop_padding=2), seed=3)
    again = _train.augmenter(Recipe(augmentation="crop-flip", crop_padding=2), seed=3)
    other = _train.augmenter(Recipe(augmentation="crop-flip", crop_padding=2), seed=4)
    batches = [first(x) for _ in range(3)]
    assert all(torch.equal(a, again(x)) for a in batches)  # the same seed: the same crops and flips, batch by batch
    assert not torch.equal(batches[0], other(x)) and not torch.equal(batches[0], batches[1])
    out = batches[0]
    assert out.shape == x.shape and out.dtype == x.dtype and not torch.equal(out, x)  # pixels moved
    found = []
    for image, result in zip(x, out, strict=True):
        matches = [key for key, crop in crops(image, 2).items() if torch.equal(crop, result)]
        assert matches, "every output is a crop (maybe mirrored) of its own image"
        found.append(matches[0])
    assert {flipped for _, _, flipped in found} == {False, True}
    assert len({(dy, dx) for dy, dx, _ in found}) > 5  # offsets vary per sample
    assert _train.augmenter(Recipe(), seed=3)(x) is x  # no augmentation: the batch itself


def test_crop_flip_refuses_flat_features():
    with pytest.raises(ValueError, match="needs images"):
        _train.augmenter(Recipe(augmentation="crop-flip"), seed=0)(torch.zeros(4, 10))


def scripted(monkeypatch, accuracies):
    """Early stopping's validation accuracies, one per epoch, as given."""
    values = iter(accuracies)
    monkeypatch.setattr(_train, "robust_accuracy", lambda *args, **kwargs: next(values))


def test_early_stopping_keeps_the_best_epoch_and_records_it(synthetic, monkeypatch):
    recipe = Recipe(early_stop="robust-val", val_fraction=0.25)
    scripted(monkeypatch, [0.2, 0.7, 0.5, 0.6])
    kept, ctx = fit("standard", synthetic, recipe, epochs=4)
    assert ctx.outcome["early_stop_epoch"] == 2
    scripted(monkeypatch, [0.2, 0.7])
    two_epochs, _ = fit("standard", synthetic, recipe, epochs=2)
    scripted(monkeypatch, [0.2, 0.3, 0.5, 0.6])
    last, last_ctx = fit("standard", synthetic, recipe, epochs=4)
    assert last_ctx.outcome["early_stop_epoch"] == 4
    assert same_weights(kept, two_epochs)  # the weights after epoch 2, not after epoch 4
    assert not same_weights(kept, last)


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_early_stopping_measures_robust_accuracy_on_held_out_samples(synthetic):
    recipe = Recipe(early_stop="robust-val", val_fraction=0.25, val_steps=3)
    _, plain = fit("pgd-at", synthetic, Recipe(), epochs=2, steps=2)
    _, ctx = fit("pgd-at", synthetic, recipe, epochs=2, steps=2)
    assert ctx.outcome["early_stop_epoch"] in (1, 2)
    fit_samples, held_out = 180, 60  # 240 training samples, a quarter held out
    assert plain.costs["train_grad_evals"] == 2 * 3 * 240
    assert ctx.costs["train_grad_evals"] == 2 * 3 * fit_samples + 2 * recipe.val_steps * held_out  # + validation


def test_recipe_keys_and_values_are_checked_with_did_you_mean():
    with pytest.raises(ConfigError, match=r"--recipe: unknown recipe key 'epoch'; did you mean 'epochs'\? \(keys: "
                                          r"optimiser, lr"):
        RecipeOverrides.parse("digits", "epoch=3", "--recipe")
    with pytest.raises(ConfigError, match="schedule must be one of constant, piecewise, cyclic, cosine"):
        RecipeOverrides.parse("digits", "schedule=linear", "--recipe")
    with pytest.raises(ConfigError, match="milestones must be ascending fractions"):
        RecipeOverrides.parse("digits", "milestones=0.75,0.5", "--recipe")
    parsed = RecipeOverrides.parse("digits", "schedule=piecewise,milestones=0.3,0.6,epochs=9", "--recipe").values
    assert parsed == {"schedule": "piecewise", "milestones": (0.3, 0.6), "epochs": 9}
    table = RecipeOverrides.parse("digits", {"optimiser": "sgd", "milestones": [0.5]}, "recipe (in x.toml)").values
    assert table == {"optimiser": "sgd", "milestones": (0.5,)}


def test_unknown_recipe_key_is_one_line_exit_2_and_nothing_stored(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["evaluate", "--dataset", "synthetic", "--model", "mlp", "--device", "cpu",
                                       "--out", str(out), "--recipe", "optimizer=sgd"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and "unknown recipe key 'optimizer'; did you mean 'optimiser'?" in lines[0]
    assert all(key in lines[0] for key in FIELDS)
    assert not out.exists()
    config = tmp_path / "run.toml"
    config.write_text('[evaluate]\ndataset = "synthetic"\nrecipe = {shedule = "cosine"}\n')
    result = CliRunner().invoke(main, ["evaluate", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 2 and "did you mean 'schedule'?" in result.stderr and not out.exists()


def test_autocast_on_a_cpu_run_is_refused_at_config_time(tmp_path):
    with pytest.raises(ConfigError, match=r"--recipe: standard: amp=bf16 is autocast on CUDA, but the device is cpu"):
        config_for(tmp_path, recipe="amp=bf16", defenses="standard")


def config_for(tmp_path, **options):
    return build_config({}, {"dataset": "synthetic", "model": "mlp", "device": "cpu", "out": str(tmp_path / "o"),
                             **options}, create_out=False)


def test_a_recipe_enters_the_train_hash_only_when_it_changes_the_training(tmp_path):
    def hashes(**options):
        return [job.train_hash for job in plan(config_for(tmp_path, **{"defenses": "standard,pgd-at", **options}))]

    legacy = hashes()
    assert hashes(recipe="val_steps=3,crop_padding=2") == legacy  # fields the default recipe does not use
    assert hashes(recipe="epochs=40,lr=0.001") == legacy  # the defenses' own defaults: the same defense params
    cosine, sgd = hashes(recipe="schedule=cosine"), hashes(recipe="optimiser=sgd")
    assert len({*legacy, *cosine, *sgd}) == 6
    assert hashes(recipe="epochs=5")[0] == hashes(defenses="standard:epochs=5")[0]  # the shared epochs: a default
    (job, *_) = plan(config_for(tmp_path, defenses="standard", recipe="schedule=cosine"))
    assert job.recipe.schedule == "cosine" and job.train_payload()["recipe"]["schedule"] == "cosine"


def test_paper_settings_set_recipes_and_defense_defaults_that_explicit_parameters_override():
    run = RecipeOverrides.parse("cifar10", "", "--recipe")
    specs = parse_plugins("defense", "pgd-at,trades,fgsm-at:epochs=3,standard,pgd-at:steps=7,fedavg", "--defense",
                          run.defense_defaults)
    pgd, trades, fgsm, standard, pgd7, fedavg = (dict(spec.params) for spec in specs)
    assert {k: pgd[k] for k in ("eps", "step", "steps", "epochs", "lr")} == {"eps": 8 / 255, "step": 2 / 255,
                                                                            "steps": 10, "epochs": 200, "lr": 0.1}
    assert [spec.label for spec in specs] == ["pgd-at", "trades", "fgsm-at(epochs=3)", "standard", "pgd-at(steps=7)",
                                              "fedavg"]
    assert trades["beta"] == 6.0 and trades["epochs"] == 110 and fgsm["epochs"] == 3 and pgd7["steps"] == 7
    assert standard["epochs"] == 200 and fedavg == dataclasses.asdict(bench.DEFENSES.get("fedavg")())
    recipes = [run.recipe_for(spec) for spec in specs]
    assert (recipes[0].optimiser, recipes[0].schedule, recipes[0].augmentation, recipes[0].weight_decay) == (
        "sgd", "piecewise", "crop-flip", 5e-4)
    assert recipes[1].milestones == (100 / 110, 105 / 110) and recipes[1].epochs == 110
    assert (recipes[2].schedule, recipes[2].lr, recipes[2].epochs) == ("cyclic", 0.2, 3)
    assert recipes[5] is None  # fedavg trains its clients itself
    mnist = RecipeOverrides.parse("mnist", "epochs=2", "--recipe")
    (madry,) = parse_plugins("defense", "pgd-at", "--defense", mnist.defense_defaults)
    assert {k: dict(madry.params)[k] for k in ("eps", "step", "steps", "lr", "batch_size", "epochs")} == {
        "eps": 0.3, "step": 0.01, "steps": 40, "lr": 1e-4, "batch_size": 50, "epochs": 2}
    for setting in PAPERS.values():  # every paper setting is a valid recipe, per defense too
        assert all(Recipe(**{**setting.recipe, **part}) for part in [{}, *setting.defense_recipe.values()])


def test_digits_keep_each_defense_s_own_defaults():
    run = RecipeOverrides.parse("digits", None, "--recipe")
    for name in ("standard", "pgd-at", "fgsm-at", "trades", "noise-aug"):
        assert run.defense_defaults(name) == {}
        (spec,) = parse_plugins("defense", name, "--defense", run.defense_defaults)
        assert run.recipe_for(spec).legacy and spec.label == name


def test_early_stopping_end_to_end_records_the_recipe_and_the_chosen_epoch(tmp_path):
    out = tmp_path / "out"
    for attack in ("pgd", "fgsm"):  # the second job loads the first one's checkpoint
        result = CliRunner().invoke(main, ["evaluate", "--dataset", "synthetic", "--model", "mlp", "--device", "cpu",
                                           "--defense", "pgd-at:epochs=3,steps=2", "--attack", attack, "--out",
                                           str(out), "--recipe", "early_stop=robust-val,val_steps=2,optimiser=sgd"])
        assert result.exit_code == 0, result.output
    with Store(out, create=False) as store:
        trained, cached = store.records()
    assert trained.recipe["early_stop"] == "robust-val" and trained.recipe["optimiser"] == "sgd"
    assert trained.recipe["epochs"] == 3 and 1 <= trained.early_stop_epoch <= 3 and not trained.train_cached
    assert cached.train_cached and cached.early_stop_epoch == trained.early_stop_epoch
    assert cached.train_hash == trained.train_hash and json.loads(cached.to_text())["recipe"] == trained.recipe


#: What the harness before recipes (main at 00d03bb) planned and trained for ``--quick`` digits standard,pgd-at with
#: cnn-small, seed 0, one thread: the train hashes, and each weight tensor's L1 norm. Recipes must change neither.
BEFORE_RECIPES = {"hashes": ["d2bc146bf46e87619ead", "6bee0fa0e3173b7c7f19"], "l1": {
    "standard": {"0.weight": 49.832708, "0.bias": 4.0235, "2.weight": 769.445643, "2.bias": 2.047491,
                 "6.weight": 2662.087845, "6.bias": 2.260573, "8.weight": 67.949029, "8.bias": 0.518818},
    "pgd-at": {"0.weight": 50.347828, "0.bias": 4.06679, "2.weight": 758.609518, "2.bias": 2.033331,
               "6.weight": 2474.554458, "6.bias": 2.167954, "8.weight": 62.750374, "8.bias": 0.5005}}}


def digits_jobs(tmp_path):
    config = build_config({}, {"defenses": "standard,pgd-at", "quick": True, "device": "cpu",
                               "out": str(tmp_path / "here")}, create_out=False)
    return plan(config)


def test_digits_train_hashes_are_those_from_before_recipes(tmp_path):
    """Unchanged hashes keep every checkpoint and record cached before recipes valid."""
    assert [job.train_hash for job in digits_jobs(tmp_path)] == BEFORE_RECIPES["hashes"]


@pytest.mark.slow
def test_digits_default_recipe_trains_the_weights_of_before(tmp_path):
    """The same training as before recipes: each tensor's L1 norm within 1e-4 of its value then (measured equal to
    six decimals on the machine that pinned them; the slack absorbs another CPU's kernels, not a changed loop)."""
    from benchmark.plan import load_dataset

    data = load_dataset("digits")
    torch.set_num_threads(1)
    for job in digits_jobs(tmp_path):
        torch.manual_seed(0)
        model = bench.MODELS.get("cnn-small")(data.input_shape, data.nb_classes)
        job.defense.build().fit(model, data, RunContext(seed=0, quick=True, recipe=job.recipe))
        l1 = {key: float(value.double().abs().sum()) for key, value in model.state_dict().items()}
        assert l1 == pytest.approx(BEFORE_RECIPES["l1"][job.defense.name], rel=1e-4), job.defense.name
