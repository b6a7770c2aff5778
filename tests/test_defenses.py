"""The contract every registered defense must pass (trains on ``synthetic`` in seconds)."""

import dataclasses
import re

import numpy as np
import pytest
import torch

import benchmark as bench
from benchmark.api import RunContext
from benchmark.runner import inference_model

#: Client-level DP at its defaults (100 clients, 20 rounds of 5 local epochs) takes 6–16 s here; the contract needs a
#: model that learns, so these run smaller, with less noise.
SMALL = {"dp-fedavg": {"clients": 20, "rounds": 10, "local_epochs": 2, "noise_multiplier": 0.3},
         "dp-fed-at": {"clients": 20, "rounds": 10, "local_epochs": 2, "noise_multiplier": 0.3}}


def train(name, synthetic, seed):
    torch.manual_seed(seed)
    model = bench.MODELS.get("mlp")(synthetic.input_shape, synthetic.nb_classes)
    private = getattr(bench.DEFENSES.get(name), "private", False)  # DP: quick's few noisy steps learn nothing yet
    ctx = RunContext(seed=seed, quick=not private)
    defense = bench.DEFENSES.get(name)(**SMALL.get(name, {}))
    if not hasattr(defense, "trained_network"):
        return defense, defense.fit(model, synthetic, ctx), ctx
    # a network of the defense's own, as the runner builds it, which takes the defense's encoding of the inputs
    trained = defense.fit(defense.trained_network(model, synthetic.input_shape), synthetic, ctx)
    return defense, inference_model(defense, trained), ctx


def accuracy(model, data):
    with torch.no_grad():
        return (model(torch.from_numpy(data.x_test)).argmax(1).numpy() == data.y_test).mean()


@pytest.mark.parametrize("name", [name for name in bench.DEFENSES.names() if name != "pretrained"])
def test_defense_contract(name, synthetic):
    defense, model, ctx = train(name, synthetic, seed=1)
    cls = type(defense)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert re.search(r"et al\. (19|20)\d\d", cls.__doc__) or "no defense" in cls.__doc__  # cites its paper
    assert all(f.default is not dataclasses.MISSING for f in dataclasses.fields(cls)), "explicit defaults"
    assert dataclasses.asdict(defense)  # parameters are recorded
    assert accuracy(model, synthetic) > 1.0 / synthetic.nb_classes + 0.3  # beats chance
    assert ctx.costs["train_grad_evals"] > 0
    _, again, _ = train(name, synthetic, seed=1)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # deterministic given the seed


def test_pretrained_trains_nothing(synthetic):
    model = bench.MODELS.get("mlp")(synthetic.input_shape, synthetic.nb_classes)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    ctx = RunContext(seed=0)
    assert bench.DEFENSES.get("pretrained")().fit(model, synthetic, ctx) is model
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert not ctx.costs


def test_pgd_at_counts_inner_gradients(synthetic):
    _, _, plain = train("standard", synthetic, seed=0)
    _, _, adversarial = train("pgd-at", synthetic, seed=0)
    steps = bench.DEFENSES.get("pgd-at")().steps
    assert adversarial.costs["train_grad_evals"] == (steps + 1) * plain.costs["train_grad_evals"]


def test_quick_divides_epochs():
    assert RunContext(seed=0, quick=True).epochs(40) == 5
    assert RunContext(seed=0, quick=True).epochs(3) == 1
    assert RunContext(seed=0).epochs(40) == 40


def test_different_seeds_give_different_models(synthetic):
    _, a, _ = train("standard", synthetic, seed=1)
    _, b, _ = train("standard", synthetic, seed=2)
    assert not np.allclose(a[1].weight.detach().numpy(), b[1].weight.detach().numpy())
