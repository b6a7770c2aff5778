import copy

import numpy as np
import pytest
import torch

import benchmark as bench
from attacks.privacy.gradient_inversion import (
    Client,
    GradientInversion,
    last_layer,
    recover_labels,
    total_variation,
    update_distance,
)
from benchmark.api import DataBundle, RunContext
from benchmark.config import parse_plugins
from benchmark.errors import ConfigError
from benchmark.plan import load_dataset

THRESHOLD = 25.0  # the bar: a batch-1 FedSGD update is reconstructed with mean PSNR ≥ 25 dB


def fedavg(update, rng):
    return update


def clip_and_noise(update, rng, clip=1.0, sigma=1.0):
    """DP-FedAvg's release: the update clipped to norm C, plus Gaussian noise of std σ·C."""
    clipped = update * min(1.0, clip / max(np.linalg.norm(update), 1e-12))
    return clipped + rng.normal(0.0, sigma * clip, size=update.shape)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def global_model(digits):
    """The global model after FedAvg with its defaults (40 rounds, 10 clients): an mlp, whose last layer has a bias."""
    torch.manual_seed(0)
    model = bench.MODELS.get("mlp")(digits.input_shape, digits.nb_classes)
    return bench.DEFENSES.get("fedavg")().fit(model, digits, RunContext(seed=0))


def attack(**params):
    """The attack with its defaults, on two victims per setting unless told otherwise."""
    return GradientInversion(**{"victims": 2, **params})


def test_registered_as_an_inversion_attack():
    assert bench.PRIVACY.get("gradient-inversion") is GradientInversion
    assert GradientInversion.kind == "inversion"


def test_batch_one_fedsgd_update_is_reconstructed(global_model, digits):
    outcome = attack(batch_sizes=(1,), local_steps=(1,), victims=3).run(global_model, digits, fedavg, seed=0,
                                                                      device="cpu")
    (setting,) = outcome.settings
    assert (setting.batch_size, setting.local_steps, len(setting.psnr)) == (1, 1, 3)
    assert setting.mean_psnr >= THRESHOLD, setting.psnr
    assert setting.recovered(outcome.psnr_threshold) >= 2
    assert np.mean(setting.ssim) > 0.9
    assert outcome.seconds > 0


def test_psnr_falls_with_batch_size(global_model, digits):
    outcome = attack(batch_sizes=(1, 8), local_steps=(1,), victims=1).run(global_model, digits, fedavg, seed=0,
                                                                       device="cpu")
    one, eight = outcome.settings
    assert (one.batch_size, eight.batch_size) == (1, 8) and outcome.headline is one
    assert eight.mean_psnr < one.mean_psnr - 10, (one.psnr, eight.psnr)


def test_clipped_and_noised_release_defeats_it(global_model, digits):
    outcome = attack(batch_sizes=(1,), local_steps=(1,)).run(global_model, digits, clip_and_noise, seed=0, device="cpu")
    (setting,) = outcome.settings
    assert setting.mean_psnr < THRESHOLD - 10, setting.psnr
    assert setting.recovered(outcome.psnr_threshold) == 0


def test_deterministic_given_the_seed_and_the_model_untouched(global_model, digits):
    model = copy.deepcopy(global_model).eval()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    threads = torch.get_num_threads()
    quick = attack(batch_sizes=(1, 2), local_steps=(1, 2), victims=1, iterations=20, restarts=2)
    first = quick.run(model, digits, clip_and_noise, seed=3, device="cpu")
    again = quick.run(model, digits, clip_and_noise, seed=3, device="cpu")
    other = quick.run(model, digits, clip_and_noise, seed=4, device="cpu")
    assert [s.psnr for s in first.settings] == [s.psnr for s in again.settings]
    assert [s.ssim for s in first.settings] == [s.ssim for s in again.settings]
    assert [s.psnr for s in first.settings] != [s.psnr for s in other.settings]
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert not model.training and torch.get_num_threads() == threads


def test_labels_recovered_exactly(global_model, digits):
    client = Client.of(global_model, "cpu", 0.1, digits.input_shape)
    firsts = [int(np.flatnonzero(digits.y_train == label)[0]) for label in range(digits.nb_classes)]
    for steps in (1, 5):
        for index in firsts:  # batch 1, every class
            update = client.update(torch.from_numpy(digits.batch("train", [index])),
                                   torch.from_numpy(digits.y_train[[index]]), steps)
            assert recover_labels(*last_layer(update, 10), 1).tolist() == [digits.y_train[index]]
        distinct = np.array(firsts[1:9])  # a batch of eight distinct labels
        update = client.update(torch.from_numpy(digits.batch("train", distinct)),
                               torch.from_numpy(digits.y_train[distinct]), steps)
        assert recover_labels(*last_layer(update, 10), 8).tolist() == sorted(digits.y_train[distinct])


def test_labels_by_hand():
    # rows with a negative entry: classes 1 and 3 are present, whatever the sign of their bias entry
    weight = torch.tensor([[0.1, 0.2], [-0.3, 0.1], [0.0, 0.1], [0.2, -0.1]])
    bias = torch.tensor([0.3, -0.5, 0.1, 0.05])
    assert recover_labels(weight, bias, 1).tolist() == [1]
    assert recover_labels(weight, bias, 2).tolist() == [1, 3]
    # a third image: impact (0.5 − 0.05) / 3 = 0.15, class 1's bias −0.35 after it, class 3's 0.2: class 1 again
    assert recover_labels(weight, bias, 3).tolist() == [1, 1, 3]
    assert recover_labels(weight, None, 3).tolist() == [1, 1, 3]  # no bias: the rows summed, −0.2 and 0.1


def test_client_update_is_plain_sgd(global_model, digits):
    client = Client.of(global_model, "cpu", 0.05, digits.input_shape)
    x, y = torch.from_numpy(digits.batch("train", slice(0, 4))), torch.from_numpy(digits.y_train[:4])
    simulated = client.update(x, y, 3)
    reference = copy.deepcopy(global_model).train()
    optimiser = torch.optim.SGD(reference.parameters(), lr=0.05)
    for _ in range(3):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(reference(x), y).backward()
        optimiser.step()
    for update, new, old in zip(simulated, reference.parameters(), global_model.parameters(), strict=True):
        assert torch.allclose(update, new.detach() - old.detach(), atol=1e-6)


def test_losses_and_prior_by_hand():
    a = [torch.tensor([1.0, 2.0]), torch.tensor([[2.0]])]
    assert float(update_distance(a, a, "cosine")) == pytest.approx(0.0, abs=1e-7)
    assert float(update_distance(a, [-t for t in a], "cosine")) == pytest.approx(2.0)
    assert float(update_distance(a, [torch.zeros(2), torch.zeros(1, 1)], "l2")) == pytest.approx(9.0)
    checkerboard = (torch.arange(4)[:, None] + torch.arange(4)[None, :]) % 2
    assert float(total_variation(checkerboard.float()[None, None])) == pytest.approx(2.0)


def test_dlg_l2_loss_works_on_a_fresh_model_only(global_model, digits):
    """Geiping et al.'s finding: DLG's Euclidean loss inverts an untrained network but not a trained one, where the
    cosine loss still does (``test_batch_one_fedsgd_update_is_reconstructed``)."""
    torch.manual_seed(0)
    fresh = bench.MODELS.get("mlp")(digits.input_shape, digits.nb_classes)
    l2 = attack(batch_sizes=(1,), local_steps=(1,), loss="l2", iterations=150)
    assert l2.run(fresh, digits, fedavg, seed=0, device="cpu").settings[0].mean_psnr >= THRESHOLD
    assert l2.run(global_model, digits, fedavg, seed=0, device="cpu").settings[0].mean_psnr < THRESHOLD - 5


@pytest.mark.parametrize(("params", "message"), [
    ({"batch_sizes": (1, "x")}, "batch_sizes must be ascending distinct ints in \\[1, 64\\]"),
    ({"batch_sizes": (0, 4)}, "batch_sizes must be ascending distinct ints"),
    ({"batch_sizes": (4, 4)}, "batch_sizes must be ascending distinct ints"),
    ({"batch_sizes": (8, 1)}, "batch_sizes must be ascending distinct ints"),
    ({"local_steps": ()}, "local_steps must be ascending distinct ints in \\[1, 100\\]"),
    ({"loss": "l1"}, "loss must be one of cosine, l2"),
    ({"victims": 0}, "victims must be an int"),
])
def test_bad_parameters_are_named(params, message):
    with pytest.raises(ValueError, match=f"^GradientInversion: {message}"):
        GradientInversion(**params)


def test_counts_from_text_and_toml():
    (spec,) = parse_plugins("privacy", "gradient-inversion:batch_sizes=1 4 8,local_steps=5", "--privacy")
    built = spec.build()
    assert (built.batch_sizes, built.local_steps) == ((1, 4, 8), (5,))
    assert built.settings() == [(1, 5), (4, 5), (8, 5)]
    (table,) = parse_plugins("privacy", [{"name": "gradient-inversion", "batch_sizes": [1, 2]}], "--privacy")
    assert dict(table.params)["batch_sizes"] == (1, 2)
    with pytest.raises(ConfigError, match="^--privacy: gradient-inversion: batch_sizes must be ascending distinct"):
        parse_plugins("privacy", "gradient-inversion:batch_sizes=1 x", "--privacy")


def test_refuses_what_it_cannot_attack(global_model, digits):
    features = DataBundle("features", np.zeros((4, 64), np.float32), np.arange(4), np.zeros((2, 64), np.float32),
                          np.arange(2), 10)
    with pytest.raises(ValueError, match="images of shape"):
        attack().run(global_model, features, fedavg, seed=0, device="cpu")
    few = DataBundle("few", digits.x_train[:4], digits.y_train[:4], digits.x_test, digits.y_test, 10)
    with pytest.raises(ValueError, match="batch_sizes asks for a client of 8 images"):
        attack().run(global_model, few, fedavg, seed=0, device="cpu")
