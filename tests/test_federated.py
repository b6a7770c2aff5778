import dataclasses

import pytest
import torch

import benchmark as bench
from benchmark.api import RunContext
from benchmark.config import parse_plugins
from benchmark.errors import ConfigError
from benchmark.plan import load_dataset


def clean_accuracy(model, data):
    with torch.no_grad():
        return float((model(torch.from_numpy(data.x_test)).argmax(1).numpy() == data.y_test).mean())


def train_fedavg(data, **params):
    torch.manual_seed(0)
    model = bench.MODELS.get("mlp")(data.input_shape, data.nb_classes)
    return clean_accuracy(bench.DEFENSES.get("fedavg")(**params).fit(model, data, RunContext(seed=0)), data)


#: The Byzantine setting of the acceptance check: digits, mlp, 10 IID clients of which 2 are Byzantine,
#: 5 local epochs × 8 rounds.
BYZANTINE_SETTING = {"clients": 10, "local_epochs": 5, "rounds": 8}


@pytest.mark.slow
@pytest.mark.parametrize(("attack", "extra"), [("sign-flip", {"byzantine_scale": 10.0}),
                                               ("gaussian", {"byzantine_std": 1.0})])
def test_two_byzantine_clients_of_ten_hurt_mean_not_median_or_krum(attack, extra):
    digits = load_dataset("digits")
    honest = train_fedavg(digits, **BYZANTINE_SETTING)
    attacked = {rule: train_fedavg(digits, **BYZANTINE_SETTING, aggregation=rule, byzantine=2,
                                   byzantine_attack=attack, **extra) for rule in ("mean", "median", "krum")}
    assert honest > 0.9
    assert attacked["mean"] < honest - 0.20, attacked
    assert attacked["median"] > honest - 0.05, attacked
    assert attacked["krum"] > honest - 0.05, attacked


def test_dirichlet_clients_learn_less_than_iid(synthetic):
    iid = train_fedavg(synthetic, rounds=6)
    skewed = train_fedavg(synthetic, rounds=6, partition="dirichlet", alpha=0.05)
    assert skewed < iid


def test_fraction_selects_clients_and_fedprox_limits_drift(synthetic):
    from torch.nn.utils import parameters_to_vector

    def run(**params):
        torch.manual_seed(0)
        model = bench.MODELS.get("mlp")(synthetic.input_shape, synthetic.nb_classes)
        start = parameters_to_vector(model.parameters()).detach().clone()
        ctx = RunContext(seed=0)
        bench.DEFENSES.get("fedavg")(rounds=2, local_epochs=3, **params).fit(model, synthetic, ctx)
        drift = float((parameters_to_vector(model.parameters()).detach() - start).norm())
        return drift, ctx.costs["train_grad_evals"]

    drift, evals = run()
    _, evals_half = run(fraction=0.5)
    drift_prox, _ = run(mu=10.0)
    assert evals == 2 * 3 * len(synthetic.y_train) and evals_half == evals // 2  # 10 shards of 24; half of them
    assert drift_prox < 0.5 * drift  # the proximal term pulls clients back towards the global model


def test_fed_at_is_composed_from_both_parts():
    fed_at = bench.DEFENSES.get("fed-at")
    names = [f.name for f in dataclasses.fields(fed_at)]
    federated = [f.name for f in dataclasses.fields(bench.DEFENSES.get("fedavg"))]
    assert names[: len(federated)] == federated and names[len(federated):] == ["eps", "step", "steps"]
    defense = fed_at(eps=0.2, steps=3, lr=0.01, batch_size=16)
    local = defense.local_defense()
    assert type(local).__name__ == "PGDAT"
    assert (local.eps, local.steps, local.lr, local.batch_size) == (0.2, 3, 0.01, 16)
    assert fed_at().rounds == 80
    trades = bench.DEFENSES.get("fed-trades")(beta=3.0).local_defense()
    assert type(trades).__name__ == "TRADES" and trades.beta == 3.0


def test_fed_at_trains_adversarially(synthetic):
    ctx_plain, ctx_adv = RunContext(seed=0, quick=True), RunContext(seed=0, quick=True)
    torch.manual_seed(0)
    bench.DEFENSES.get("fedavg")(rounds=8).fit(bench.MODELS.get("mlp")(synthetic.input_shape, 4), synthetic,
                                               ctx_plain)
    bench.DEFENSES.get("fed-at")(rounds=8, steps=3).fit(bench.MODELS.get("mlp")(synthetic.input_shape, 4),
                                                        synthetic, ctx_adv)
    assert ctx_adv.costs["train_grad_evals"] == 4 * ctx_plain.costs["train_grad_evals"]  # 3 PGD steps + update


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fedavg:aggregation=bulyan", r"bulyan needs n ≥ 4f \+ 3 clients per round: n = 10, f = 2 needs n ≥ 11"),
        ("fedavg:aggregation=krum,fraction=0.5", r"krum needs n ≥ 2f \+ 3 clients per round: n = 5, f = 2"),
        ("fedavg:aggregation=medain", r"aggregation must be one of .*did you mean 'median'\?"),
        ("fedavg:partition=noniid", r"partition must be one of iid, dirichlet"),
        ("fedavg:byzantine=11", r"byzantine must be between 0 and clients = 10"),
        ("fed-at:eps=2", r"fed-at: eps must be a number in \[0, 1\], got 2.0"),
        ("fed-at:rounds=0", r"fed-at: rounds must be an int in \[1, 10000\], got 0"),
    ],
)
def test_federated_validation_names_the_numbers(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_plugins("defense", text, "--defense")


def test_bulyan_with_enough_clients_is_accepted():
    (spec,) = parse_plugins("defense", "fedavg:aggregation=bulyan,f=1", "--defense")
    assert dict(spec.params)["aggregation"] == "bulyan"
