"""Preprocessing defenses (defenses/preprocessing.py, defenses/preprocessed.py) and the adaptive runs they get
(benchmark/adaptive.py): ART's preprocessor in the forward pass, the naive and the BPDA backward passes, the base's
checkpoint shared, the parameter checks, and the views BPDA and EoT attack."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import benchmark as bench
from benchmark.adaptive import adapted_attacks, naive_label
from benchmark.config import build_config, parse_plugins
from benchmark.errors import ConfigError
from benchmark.estimator import wrap
from benchmark.plan import plan
from defenses.preprocessed import median_filter

X = np.random.default_rng(0).random((6, 1, 8, 8)).astype(np.float32)
Y = np.arange(6) % 10


def wrapped(text: str, seed: int = 0):
    torch.manual_seed(seed)
    (spec,) = parse_plugins("defense", text, "--defense")
    net = bench.MODELS.get("cnn-small")((1, 8, 8), 10).eval()
    return net, spec.build().inference_model(net)


def input_gradient(model, x=X) -> torch.Tensor:
    inputs = torch.from_numpy(x).requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(inputs), torch.from_numpy(Y))
    return torch.autograd.grad(loss, inputs)[0]


@pytest.mark.parametrize(("text", "art"), [("squeeze:bit_depth=2", "FeatureSqueezing"),
                                           ("jpeg:quality=30", "JpegCompression"),
                                           ("median-smoothing:window_size=3", "SpatialSmoothing")])
def test_the_forward_pass_is_art_s_preprocessor_then_the_network(text, art):
    net, model = wrapped(text)
    processed, _ = model.art(X)
    assert type(model.art).__name__ == art
    assert not np.array_equal(processed, X)
    with torch.no_grad():
        expected = net(torch.from_numpy(processed.astype(np.float32)))
        assert torch.allclose(model(torch.from_numpy(X)), expected, atol=1e-6)


@pytest.mark.parametrize("text", ["squeeze:bit_depth=2", "jpeg:quality=30"])
def test_the_naive_gradient_through_a_piecewise_constant_map_is_zero_and_bpda_s_is_the_network_s(text):
    net, model = wrapped(text)
    assert torch.count_nonzero(input_gradient(model)) == 0
    processed = model.art(X)[0].astype(np.float32)
    assert torch.allclose(input_gradient(model.with_mode("bpda")), input_gradient(net, processed))


def test_the_naive_median_gradient_routes_to_the_median_pixels():
    _, model = wrapped("median-smoothing:window_size=3")
    naive = input_gradient(model)
    assert torch.count_nonzero(naive) > 0
    assert not torch.allclose(naive, input_gradient(model.with_mode("bpda")))
    for size in (2, 3):  # the torch median is ART's (scipy's) median, edges included
        art = bench.DEFENSES.get("median-smoothing")(window_size=size).step().build()(X)[0]
        assert np.array_equal(median_filter(torch.from_numpy(X), size).numpy(), art)


def test_gaussian_input_is_randomized_and_draws_afresh():
    _, model = wrapped("gaussian-input:sigma=0.3")
    assert model.randomized and not wrapped("squeeze")[1].randomized
    with torch.no_grad():
        assert not torch.equal(model(torch.from_numpy(X)), model(torch.from_numpy(X)))


def test_a_preprocessing_row_shares_its_base_s_training_but_not_its_results(tmp_path):
    config = build_config({}, {"defenses": "standard,squeeze,jpeg,pgd-at,jpeg:base=pgd-at", "device": "cpu",
                               "out": str(tmp_path), "quick": True}, create_out=False)
    jobs = {job.defense.label: job for job in plan(config)}
    assert jobs["squeeze"].train_hash == jobs["jpeg"].train_hash == jobs["standard"].train_hash
    assert jobs["jpeg(base=pgd-at)"].train_hash == jobs["pgd-at"].train_hash != jobs["standard"].train_hash
    assert len({job.job_hash for job in jobs.values()}) == 5


@pytest.mark.parametrize(("text", "message"), [
    ("squeeze:bit_depth=0", r"squeeze: bit_depth must be an int in \[1, 64\], got 0"),
    ("jpeg:quality=101", r"jpeg: quality must be an int in \[1, 100\], got 101"),
    ("gaussian-input:sigma=0", r"gaussian-input: sigma must be a number in \(0, inf\)"),
    ("squeeze:base=standrd", r"squeeze: base: unknown defense 'standrd'; did you mean 'standard'\?"),
    ("squeeze:base=jpeg", r"base must be a defense that trains a model, not the wrapper 'jpeg'"),
    ("squeeze:base=pgd-at,base_params=esp=1", r"has no parameter 'esp'; did you mean 'eps'\?"),
    ("squeeze:base=smoothing", r"base must be a defense that trains a model, not the wrapper 'smoothing'"),
])
def test_bad_parameters_are_refused_before_any_work(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_plugins("defense", text, "--defense")


def runs_for(text: str) -> dict:
    _, model = wrapped(text)
    estimator = wrap(model, (1, 8, 8), 10, "cpu")
    attacks = {"fgsm": bench.ATTACKS.get("fgsm")(), "square": bench.ATTACKS.get("square")()}
    return adapted_attacks(attacks, model, estimator, X, batch_size=8, draws=3,
                           wrap_view=lambda module, draws: wrap(module, (1, 8, 8), 10, "cpu",
                                                                counts=estimator.counts, eot_draws=draws))


def test_bpda_runs_beside_the_naive_ones_and_eot_on_a_randomized_model_for_gradient_attacks_only():
    assert list(runs_for("squeeze")) == ["fgsm", "square", "fgsm+bpda"]
    runs = runs_for("gaussian-input")
    assert list(runs) == ["fgsm", "square", "fgsm+bpda", "fgsm+eot"]
    assert runs["fgsm+eot"].view.draws == 3 and runs["fgsm+eot"].record_tags == {"adaptation": "eot", "eot_draws": 3}
    assert runs["fgsm+bpda"].needs_grad and [naive_label(label) for label in runs] == [True, True, False, False]
    torch.manual_seed(0)
    plain = bench.MODELS.get("cnn-small")((1, 8, 8), 10).eval()
    estimator = wrap(plain, (1, 8, 8), 10, "cpu")
    assert list(adapted_attacks({"fgsm": runs["fgsm"]}, plain, estimator, X, batch_size=8, wrap_view=None)) == ["fgsm"]


def test_eot_averages_the_gradients_of_its_draws_and_counts_them():
    _, model = wrapped("gaussian-input:sigma=0.3")
    single = wrap(model, (1, 8, 8), 10, "cpu")
    eot = wrap(model, (1, 8, 8), 10, "cpu", counts=single.counts, eot_draws=4)
    torch.manual_seed(1)
    np.random.seed(1)
    labels = np.eye(10, dtype=np.float32)[Y]  # one-hot, as the attacks pass them
    averaged = eot.loss_gradient(X, labels)
    np.random.seed(1)
    draws = [single.loss_gradient(X, labels) for _ in range(4)]
    assert np.allclose(averaged, np.mean(draws, axis=0), atol=1e-6)
    assert single.counts["grad"] == 2 * 4 * len(X)  # both wrappers count into one counter


def test_thermometer_trains_its_own_network_through_the_encoding(tmp_path):
    config = build_config({}, {"defenses": "standard,thermometer", "device": "cpu", "out": str(tmp_path),
                               "quick": True}, create_out=False)
    standard, thermometer = plan(config)
    assert thermometer.train_hash != standard.train_hash  # the encoding is part of what trains
    defense = thermometer.defense.build()
    torch.manual_seed(0)
    network = defense.trained_network(bench.MODELS.get("cnn-small")((1, 8, 8), 10), (1, 8, 8))
    assert network[0].in_channels == 10 and network[0].out_channels == 1  # k levels back to one channel
    model = defense.inference_model(network).eval()
    assert model(torch.from_numpy(X)).shape == (6, 10)
    assert torch.count_nonzero(input_gradient(model)) == 0  # a discretisation: the naive gradient is zero
    assert torch.count_nonzero(input_gradient(model.with_mode("bpda"))) > 0  # ART's differentiable approximation
    with pytest.raises(ConfigError, match=r"thermometer: num_space must be an int in \[2, 256\], got 1"):
        parse_plugins("defense", "thermometer:num_space=1", "--defense")


def test_the_probes_attack_through_the_strongest_view():
    from benchmark.adaptive import strongest_view

    runs = runs_for("gaussian-input")
    assert strongest_view(runs) is runs["fgsm+eot"].view
    squeezed = runs_for("squeeze")
    assert strongest_view(squeezed) is squeezed["fgsm+bpda"].view
    assert strongest_view({"fgsm": squeezed["fgsm"]}) is None
