"""Interval bound propagation (``benchmark/ibp.py``, Gowal et al. 2018): bounds that contain the network's outputs,
a hand-computed case, verification that is exact at ε = 0 and shrinks with ε, undefended models verified at ≈ 0,
refusals, and the IBP training loss."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import benchmark as bench
from benchmark.api import RunContext
from benchmark.errors import ConfigError
from benchmark.ibp import (
    UnsupportedLayer,
    ibp_layers,
    ibp_loss,
    input_box,
    interval_bounds,
    verified_accuracy,
    worst_case_logits,
)
from benchmark.recipes import Recipe

EPS_GRID = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)


@pytest.fixture(scope="module")
def digits():
    from benchmark.plan import load_dataset

    return load_dataset("digits")


def trained(name: str, digits, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    model = bench.MODELS.get(name)(digits.input_shape, digits.nb_classes)
    return bench.DEFENSES.get("standard")(epochs=epochs).fit(model, digits, RunContext(seed=0))


@pytest.fixture(scope="module")
def cnn(digits):
    """cnn-small trained normally on digits for 5 epochs (under a second)."""
    return trained("cnn-small", digits, epochs=5)


def hand_model() -> nn.Sequential:
    """z = relu(W x + b) with W = [[1, −2], [0.5, 1]], b = [0.1, −0.2]."""
    linear = nn.Linear(2, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 1.0]]))
        linear.bias.copy_(torch.tensor([0.1, -0.2]))
    return nn.Sequential(nn.Flatten(), linear, nn.ReLU(inplace=True))


def test_hand_computed_bounds_with_the_box_clipped_to_the_domain():
    model = hand_model()
    x = torch.tensor([[0.5, 0.5], [0.05, 0.95]])
    lower, upper = interval_bounds(ibp_layers(model), *input_box(x, 0.1))
    # sample 1: box [0.4, 0.6]²; z0 ∈ [0.4 − 1.2 + 0.1, 0.6 − 0.8 + 0.1] = [−0.7, −0.1] → relu [0, 0];
    #           z1 ∈ [0.2 + 0.4 − 0.2, 0.3 + 0.6 − 0.2] = [0.4, 0.7]
    # sample 2: box clipped to [0, 0.15] × [0.85, 1]; z0 ∈ [−1.9, −1.45] → [0, 0]; z1 ∈ [0.65, 0.875]
    assert torch.allclose(lower, torch.tensor([[0.0, 0.4], [0.0, 0.65]]))
    assert torch.allclose(upper, torch.tensor([[0.0, 0.7], [0.0, 0.875]]))
    verified, cost = verified_accuracy(model, x.numpy(), np.array([1, 0]), eps=0.1)
    assert verified.tolist() == [True, False]  # class 1's lower bound 0.4 > class 0's upper 0; class 0 never wins
    assert cost.forward_passes == 4 and cost.seconds >= 0


def bn_cnn() -> nn.Sequential:
    """A network with every supported layer, BatchNorm with non-trivial running statistics, nested Sequentials."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, stride=2), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8)), nn.ReLU(), nn.Linear(8, 3))
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.5, 0.5)
            layer.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(layer.weight, -2, 2)  # negative scales too
            nn.init.uniform_(layer.bias, -1, 1)
    return model.eval()


@pytest.mark.parametrize("name", ["mlp", "cnn-small", "bn-cnn"])
def test_bounds_contain_the_outputs_of_points_inside_the_box(name):
    torch.manual_seed(0)
    model = bn_cnn() if name == "bn-cnn" else bench.MODELS.get(name)((1, 8, 8), 10).eval()
    x = torch.rand(4, 1, 8, 8)
    lower, upper = interval_bounds(ibp_layers(model), *input_box(x, 0.1))
    box_lower, box_upper = input_box(x, 0.1)
    with torch.no_grad():
        for _ in range(100):
            point = box_lower + torch.rand_like(x) * (box_upper - box_lower)
            logits = model(point)
            assert torch.all(lower <= logits + 1e-5) and torch.all(logits <= upper + 1e-5)
    assert torch.all(upper - lower > 0)  # a real box, not a point


def test_at_eps_zero_verified_exactly_where_the_model_is_correct(cnn, digits):
    verified, _ = verified_accuracy(cnn, digits.x_test, digits.y_test, eps=0.0, batch_size=100)
    with torch.no_grad():
        correct = cnn(torch.as_tensor(digits.x_test)).argmax(1).numpy() == digits.y_test
    assert np.array_equal(verified, correct)
    assert correct.mean() > 0.8  # the model did learn


def test_verified_accuracy_is_non_increasing_in_eps(digits):
    mlp = trained("mlp", digits, epochs=5)
    verified = [verified_accuracy(mlp, digits.x_test, digits.y_test, eps=eps)[0] for eps in EPS_GRID]
    for smaller, larger in pairwise(verified):
        assert not np.any(larger & ~smaller)  # per sample: verified at a larger ε ⇒ verified at a smaller one
    rates = [v.mean() for v in verified]
    assert rates[0] > 0.8 and rates[-1] == 0 and len(set(rates)) > 3


def test_undefended_cnn_is_verified_at_about_zero_at_eps_0_1(cnn, digits):
    verified, cost = verified_accuracy(cnn, digits.x_test, digits.y_test, eps=0.1)
    assert verified.mean() <= 0.01  # measured: 0 of 360
    assert cost.forward_passes == 2 * len(digits.y_test)


class Residual(nn.Module):
    def forward(self, x):
        return x + 1


@pytest.mark.parametrize("model, named", [
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Tanh()), "Tanh"),
    (nn.Sequential(nn.Flatten(), nn.Sequential(nn.Dropout(), nn.Linear(64, 10))), "Dropout"),
    (Residual(), "Residual"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")), "padding_mode='reflect'"),
    (nn.Sequential(nn.BatchNorm2d(1, track_running_stats=False)), "BatchNorm2d layer without running statistics"),
])
def test_unsupported_layers_are_refused_by_name(model, named):
    with pytest.raises(UnsupportedLayer, match=named) as error:
        verified_accuracy(model, np.zeros((1, 1, 8, 8), np.float32), np.zeros(1, np.int64), eps=0.1)
    assert isinstance(error.value, ValueError) and "\n" not in str(error.value)


@pytest.mark.parametrize("kwargs, named", [({"eps": -0.1}, "eps"), ({"eps": float("nan")}, "eps"),
                                           ({"eps": 0.1, "batch_size": 0}, "batch_size")])
def test_bad_eps_or_batch_size_is_refused_by_name(kwargs, named):
    with pytest.raises(ConfigError, match=f"^{named} must be"):
        verified_accuracy(hand_model(), np.zeros((1, 2), np.float32), np.zeros(1, np.int64), **kwargs)


@pytest.mark.parametrize("kwargs, named", [({"eps": -1}, "eps"), ({"eps": 0.1, "kappa": 1.5}, "kappa"),
                                           ({"eps": 0.1, "ramp_steps": -1}, "ramp_steps")])
def test_bad_ibp_loss_parameters_are_refused_by_name(kwargs, named):
    with pytest.raises(ConfigError, match=f"^{named} must be"):
        ibp_loss(**kwargs)


def test_ibp_loss_is_cross_entropy_at_kappa_one_and_worst_case_after_the_ramp():
    torch.manual_seed(0)
    net, x, y = bench.MODELS.get("cnn-small")((1, 8, 8), 10), torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    nominal = F.cross_entropy(net(x), y)
    assert torch.equal(ibp_loss(eps=0.1, kappa=1.0)(net, x, y), nominal)
    lower, upper = interval_bounds(ibp_layers(net), *input_box(x, 0.1))
    robust = F.cross_entropy(worst_case_logits(lower, upper, y), y)
    loss = ibp_loss(eps=0.1, kappa=0.0, warmup_steps=1, ramp_steps=2)
    values = [loss(net, x, y) for _ in range(4)]  # warm-up, ramp start (ε = 0), halfway (κ = ½, ε = 0.05), end
    assert torch.equal(values[0], nominal) and torch.equal(values[1], nominal)
    assert nominal < values[2] < robust
    assert torch.allclose(values[3], robust) and robust > nominal
    values[3].backward()
    assert all(p.grad is not None for p in net.parameters())


def test_ibp_training_in_the_shared_loop_makes_a_verifiable_mlp(digits):
    from defenses._train import train

    torch.manual_seed(0)
    model = bench.MODELS.get("mlp")(digits.input_shape, digits.nb_classes)
    loss = ibp_loss(eps=0.1, warmup_steps=24, ramp_steps=120)  # 12 batches an epoch: 2 epochs warm, 10 of ramp
    train(model, digits, RunContext(seed=0), recipe=Recipe(epochs=20, lr=1e-3, batch_size=128), batch_loss=loss)
    verified, _ = verified_accuracy(model, digits.x_test, digits.y_test, eps=0.1)
    assert verified.mean() > 0.3  # an undefended model: 0 (above)
