"""The federated defenses run the client attacks of ``benchmark.CLIENT_ATTACKS`` (``defenses/byzantine.py``): the
naive attacks train exactly what they trained before the registry, with the same hashes; the attacks' own parameters
are checked before any work; an update attack crafted to beat the mean beats it, and not the median."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import benchmark as bench
from benchmark.api import RunContext
from benchmark.config import build_config, parse_plugins
from benchmark.errors import ConfigError
from benchmark.plan import plan
from defenses import byzantine

#: Measured before the registry (issue-14 branch at 5fb3df2, ``byzantine_update`` in defenses/federated.py):
#: --quick train hashes, and the weight tensors' L1 norms after 3 rounds on synthetic (mlp, seed 0, one thread).
SPECS = "fedavg,fedavg:byzantine=2,byzantine_attack=gaussian,fed-at,dp-fedavg"
HASHES = {"fedavg": "b6c81266a636fdb07ac1", "fedavg(byzantine=2,byzantine_attack=gaussian)": "938f4ee1928f1ba79560",
          "fed-at": "d6cc6b72999f2fac6787", "dp-fedavg": "46aa8ef57bfe5d788558"}
L1 = {"gaussian": [1960.421029, 53.337703, 12953.084883, 46.407836, 197.305085, 1.467677],
      "sign-flip": [764.14785, 20.792993, 2044.10609, 8.503327, 32.99041, 0.095707]}


def test_the_hashes_are_those_from_before_the_registry(tmp_path):
    config = build_config({}, {"defenses": SPECS, "quick": True, "device": "cpu", "out": str(tmp_path)},
                          create_out=False)
    assert {job.defense.label: job.train_hash for job in plan(config)} == HASHES


@pytest.mark.parametrize(("attack", "aggregation"), [("gaussian", "mean"), ("sign-flip", "median")])
def test_the_naive_attacks_train_what_they_trained_before(synthetic, attack, aggregation):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = bench.MODELS.get("mlp")(synthetic.input_shape, synthetic.nb_classes)
    bench.DEFENSES.get("fedavg")(rounds=3, byzantine=2, byzantine_attack=attack, aggregation=aggregation).fit(
        model, synthetic, RunContext(seed=0))
    l1 = [float(value.double().abs().sum()) for value in model.state_dict().values()]
    assert l1 == pytest.approx(L1[attack], rel=1e-4)


@pytest.mark.parametrize(("text", "message"), [
    ("fedavg:byzantine=2,byzantine_attack=ipm,byzantine_params=esp=10",
     r"byzantine_params: ipm has no parameter 'esp'; did you mean 'eps'\?"),
    ("fedavg:byzantine=2,byzantine_attack=min-max,byzantine_params=direction=up",
     r"byzantine_params: min-max: direction must be one of"),
    ("fedavg:byzantine=2,byzantine_attack=ipm,byzantine_params=eps", r"byzantine_params: 'eps' is not key=value"),
    ("fedavg:byzantine_attack=ipm-attack", r"byzantine_attack must be one of .*ipm"),
])
def test_attack_parameters_are_checked_before_any_work(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_plugins("defense", text, "--defense")


def test_parameters_parse_from_semicolon_separated_text():
    assert byzantine.parse_params("eps=10; direction=sign") == {"eps": "10", "direction": "sign"}
    with pytest.raises(ValueError, match="given twice"):
        byzantine.parse_params("eps=1;eps=2")


def test_a_large_ipm_collapses_the_mean_but_not_the_median(synthetic):
    """IPM (Xie et al. 2020) with ε = 10, past (n − f)/f = 4 for 2 attackers of 10: the mean moves against the
    honest direction every round, the coordinate-wise median does not."""
    torch.set_num_threads(1)
    accuracy = {}
    for rule in ("mean", "median"):
        torch.manual_seed(0)
        model = bench.MODELS.get("mlp")(synthetic.input_shape, synthetic.nb_classes)
        defense = bench.DEFENSES.get("fedavg")(rounds=5, byzantine=2, byzantine_attack="ipm",
                                               byzantine_params="eps=10", aggregation=rule)
        defense.fit(model, synthetic, RunContext(seed=0))
        with torch.no_grad():
            predicted = model(torch.from_numpy(synthetic.x_test)).argmax(1).numpy()
        accuracy[rule] = float(np.mean(predicted == synthetic.y_test))
    assert accuracy["median"] >= 0.75 and accuracy["mean"] < accuracy["median"] - 0.5, accuracy


def accuracy_after(synthetic, **params) -> float:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = bench.MODELS.get("mlp")(synthetic.input_shape, synthetic.nb_classes)
    bench.DEFENSES.get("fedavg")(rounds=5, **params).fit(model, synthetic, RunContext(seed=0))
    with torch.no_grad():
        predicted = model(torch.from_numpy(synthetic.x_test)).argmax(1).numpy()
    return float(np.mean(predicted == synthetic.y_test))


@pytest.mark.parametrize(("rule", "params"), [("norm-bounding", {"norm_bound": 0.2}),
                                              ("centered-clipping", {"cc_tau": 0.2}), ("fltrust", {})])
def test_the_robust_rules_resist_a_sign_flip_the_mean_does_not(synthetic, rule, params):
    """Two of ten clients send −10 times their update (norm 2; the honest ones' is 0.2 here, so M and τ are set to
    it): the mean falls to 0.36 (honest training reaches 0.74 in these 5 rounds); norm bounding, centered clipping
    and FLTrust (scored against the server's own update on 100 root samples) keep most of it (measured 0.64, 0.68,
    1.0: FLTrust's server also learns from its root set)."""
    attacked = {"byzantine": 2, "byzantine_attack": "sign-flip"}
    mean = accuracy_after(synthetic, **attacked)
    robust = accuracy_after(synthetic, aggregation=rule, **params, **attacked)
    assert robust >= 0.6 and mean <= robust - 0.25, (mean, robust)


def test_fltrust_without_a_root_set_is_refused_naming_the_parameter():
    with pytest.raises(ConfigError, match=r"fltrust scores the clients .*: set root_samples ≥ 1"):
        parse_plugins("defense", "fedavg:aggregation=fltrust,root_samples=0", "--defense")


def test_byzantine_clients_train_honestly_before_attack_start(synthetic):
    """With attack_start past the last round the attackers never act: the model is the honest one, bit for bit."""
    def weights(**params):
        torch.set_num_threads(1)
        torch.manual_seed(0)
        model = bench.MODELS.get("mlp")(synthetic.input_shape, synthetic.nb_classes)
        bench.DEFENSES.get("fedavg")(rounds=3, **params).fit(model, synthetic, RunContext(seed=0))
        return [value.clone() for value in model.state_dict().values()]

    honest = weights()
    late = weights(byzantine=2, byzantine_attack="sign-flip", attack_start=3)
    attacked = weights(byzantine=2, byzantine_attack="sign-flip", attack_start=2)
    assert all(torch.equal(a, b) for a, b in zip(honest, late, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(honest, attacked, strict=True))
