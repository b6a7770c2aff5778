"""The private defenses: DP-SGD through Opacus (``defenses/dp_sgd.py``, ``defenses/_private.py``), DP-FedAvg
(``defenses/dp_fedavg.py``), their adversarial compositions (``defenses/combined.py``) and the server's clipping and
noising maths (``defenses/aggregation.py``)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from opacus import GradSampleModule
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.analysis import rdp as rdp_analysis

import benchmark as bench
from benchmark.api import DataBundle, RunContext
from benchmark.config import parse_plugins
from benchmark.errors import ConfigError
from benchmark.plan import load_dataset
from benchmark.privacy import DPGuarantee
from defenses import aggregation
from defenses._private import AttackHooksOff, nchw_convolutions
from defenses._train import perturb
from defenses.adversarial import PGDAT
from defenses.dp_fedavg import DPFedAvg
from defenses.dp_sgd import DPSGD

FIX = "build it with norm=group (e.g. --model preact-resnet18:norm=group)"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def small_digits(digits):
    """The first 300 training samples of digits: DP-SGD epochs of milliseconds."""
    return DataBundle("digits", digits.x_train[:300], digits.y_train[:300], digits.x_test, digits.y_test, 10)


def fit(name, data, *, seed=0, model="mlp", **params):
    """Train defense ``name`` with ``params`` on ``data`` from a network initialised with torch seed 0."""
    torch.manual_seed(0)
    network = bench.MODELS.get(model)(data.input_shape, data.nb_classes)
    ctx = RunContext(seed=seed)
    trained = bench.DEFENSES.get(name)(**params).fit(network, data, ctx)
    return trained, ctx


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def accuracy(model, data):
    with torch.no_grad():
        return float((model(torch.from_numpy(data.x_test)).argmax(1).numpy() == data.y_test).mean())


def rdp_epsilon(guarantee: DPGuarantee) -> float:
    """ε from σ, q, steps and δ through Opacus's RDP analysis functions directly, at the accountant's orders."""
    orders = RDPAccountant.DEFAULT_ALPHAS
    rdp = rdp_analysis.compute_rdp(q=guarantee.sample_rate, noise_multiplier=guarantee.noise_multiplier,
                                   steps=guarantee.steps, orders=orders)
    return float(rdp_analysis.get_privacy_spent(orders=orders, rdp=rdp, delta=guarantee.delta)[0])


def test_dp_sgd_epsilon_is_opacus_accountant_of_the_run(small_digits):
    _, ctx = fit("dp-sgd", small_digits, epochs=3, batch_size=32, noise_multiplier=1.2)
    guarantee = ctx.outcome["dp"]
    assert isinstance(guarantee, DPGuarantee) and guarantee.level == "sample" and guarantee.accountant == "rdp"
    assert guarantee.sample_rate == 32 / 300 and guarantee.steps == 3 * (300 // 32)  # ⌊1/q⌋ steps an epoch
    assert guarantee.delta == 1e-5 and guarantee.noise_multiplier == 1.2 and guarantee.max_grad_norm == 1.0
    assert guarantee.epsilon == pytest.approx(rdp_epsilon(guarantee), rel=1e-12)
    assert 0.5 < guarantee.epsilon < 50
    # every step's gradients are counted: Poisson batches of 32 expected samples
    assert abs(ctx.costs["train_grad_evals"] - guarantee.steps * 32) < 0.25 * guarantee.steps * 32


def test_dp_sgd_prv_epsilon_is_the_prv_accountant_of_its_steps(small_digits):
    _, ctx = fit("dp-sgd", small_digits, epochs=2, batch_size=50, accountant="prv")
    guarantee = ctx.outcome["dp"]
    accountant = PRVAccountant()
    accountant.history = [(guarantee.noise_multiplier, 50 / 300, 2 * 6)]
    assert guarantee.accountant == "prv" and guarantee.epsilon == pytest.approx(accountant.get_epsilon(1e-5))
    assert guarantee.epsilon < rdp_epsilon(guarantee)  # PRV is the tighter accountant


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_target_epsilon_is_reached_within_opacus_tolerance(small_digits, accountant):
    _, ctx = fit("dp-sgd", small_digits, epochs=2, batch_size=30, target_epsilon=3.0, accountant=accountant)
    guarantee = ctx.outcome["dp"]
    assert 3.0 - 0.01 <= guarantee.epsilon <= 3.0
    assert guarantee.noise_multiplier != DPSGD.noise_multiplier  # σ was searched, not the default


def test_delta_defaults_to_one_over_n_where_smaller():
    assert DPSGD().private_plan(300, 1).delta == 1e-5
    assert DPSGD().private_plan(1000, 1).delta == 1e-5
    assert DPSGD(batch_size=8).private_plan(50_000_000, 1).delta == 1 / 50_000_000
    assert DPFedAvg(clients=10).private_plan(5).delta == 1e-5
    assert DPSGD(delta=1e-3).private_plan(300, 1).delta == 1e-3


@pytest.fixture(scope="module")
def batchnorm_resnet():
    torch.manual_seed(0)
    return bench.MODELS.get("preact-resnet18")()((3, 32, 32), 10)


@pytest.mark.parametrize("name", ["dp-sgd", "dp-pgd-at", "dp-trades", "dp-fedavg", "dp-fed-at"])
def test_a_batchnorm_model_is_refused_with_the_fix_named(name, batchnorm_resnet):
    defense = bench.DEFENSES.get(name)()
    with pytest.raises(ValueError, match=r"^Opacus refuses BatchNorm2d for private training \(.*\): ") as refused:
        defense.check_model(batchnorm_resnet)
    assert str(refused.value).endswith(FIX) and "\n" not in str(refused.value)
    defense.check_model(bench.MODELS.get("preact-resnet18")(norm="group")((3, 32, 32), 10))  # the fix is accepted
    ctx = RunContext(seed=0)
    with pytest.raises(ValueError, match="BatchNorm2d"):
        defense.fit(batchnorm_resnet, load_dataset("synthetic"), ctx)  # fit refuses too, before any training
    assert not ctx.costs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dp-sgd:target_epsilon=0", r"^--defense: dp-sgd: target_epsilon must be a number in \(0, inf\), or none, "
                                    r"got 0.0$"),
        ("dp-sgd:target_epsilon=-2", r"dp-sgd: target_epsilon must be .*, got -2.0$"),
        ("dp-sgd:delta=1", r"^--defense: dp-sgd: delta must be a number in \(0, 1\), or none, got 1.0$"),
        ("dp-sgd:delta=0", r"dp-sgd: delta must be a number in \(0, 1\), or none, got 0.0$"),
        ("dp-sgd:noise_multiplier=0", r"dp-sgd: noise_multiplier must be a number in \(0, 1000\], got 0.0$"),
        ("dp-sgd:max_grad_norm=0", r"dp-sgd: max_grad_norm must be a number in \(0, 1e\+06\), got 0.0$"),
        ("dp-sgd:accountant=gdp", r"dp-sgd: accountant must be one of rdp, prv, got 'gdp'"),
        ("dp-pgd-at:target_epsilon=0", r"dp-pgd-at: target_epsilon must be"),
        ("dp-pgd-at:eps=2", r"dp-pgd-at: eps must be a number in \[0, 1\], got 2.0$"),
        ("dp-fedavg:delta=1.5", r"dp-fedavg: delta must be a number in \(0, 1\), or none, got 1.5$"),
        ("dp-fedavg:clip=0", r"dp-fedavg: clip must be a number in \(0, 1e\+06\), got 0.0$"),
        ("dp-fedavg:aggregation=median", r"^--defense: dp-fedavg: aggregation must be mean: the server adds the "
                                         r"noised sum of the clipped updates, got median$"),
        ("dp-fed-at:delta=1", r"dp-fed-at: delta must be"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_plugins("defense", text, "--defense")


def test_optional_parameters_take_none_and_numbers():
    (spec,) = parse_plugins("defense", "dp-sgd:target_epsilon=none,delta=1e-6", "--defense")
    assert dict(spec.params)["target_epsilon"] is None and dict(spec.params)["delta"] == 1e-6
    (spec,) = parse_plugins("defense", "dp-sgd:target_epsilon=4", "--defense")
    assert dict(spec.params)["target_epsilon"] == 4.0 and spec.label == "dp-sgd(target_epsilon=4.0)"
    with pytest.raises(ValueError, match=r"^DPSGD: target_epsilon must be a number in \(0, inf\), or none, got 0$"):
        DPSGD(target_epsilon=0)


def test_data_dependent_refusals_name_the_parameter():
    with pytest.raises(ValueError, match=r"^batch_size=64 is more than the 40 training samples"):
        DPSGD().private_plan(40, 1)
    with pytest.raises(ValueError, match=r"^target_epsilon=1e-06 cannot be reached at delta=1e-05 in 12 steps"):
        DPSGD(target_epsilon=1e-6).private_plan(300, 3)


def test_clip_l2_scales_long_updates_to_the_clip_norm_and_keeps_short_ones():
    updates = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-6.0, 8.0]])
    clipped = aggregation.clip_l2(updates, 1.0)
    assert np.allclose(clipped, [[0.6, 0.8], [0.3, 0.4], [0.0, 0.0], [-0.6, 0.8]])
    assert np.allclose(aggregation.clip_l2(updates, 5.0), [[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-3.0, 4.0]])
    with pytest.raises(ValueError, match="clip must be positive"):
        aggregation.clip_l2(updates, 0.0)


def test_noised_sum_adds_gaussian_noise_of_sigma_times_clip():
    rng = np.random.default_rng(0)
    updates = np.array([[3.0, 4.0, 0.0], [0.3, 0.4, 0.0]])  # clipped to norm 0.5: sum [0.3+0.3, 0.4+0.4, 0]
    draws = np.stack([aggregation.noised_sum(updates, clip=0.5, noise_multiplier=2.0, rng=rng) for _ in range(20000)])
    assert np.allclose(draws.mean(axis=0), [0.6, 0.8, 0.0], atol=0.03)  # 4 sd of the mean of 20000 draws of sd 1
    assert np.allclose(draws.std(axis=0), 1.0, rtol=0.02)  # σ·clip = 2 × 0.5
    noise_only = aggregation.noised_sum(np.zeros((0, 50000)), clip=0.5, noise_multiplier=2.0, rng=rng)
    assert noise_only.shape == (50000,) and abs(noise_only.std() - 1.0) < 0.02  # no client: the noise alone


def test_private_mean_divides_the_noised_sum_by_the_expected_clients():
    updates = np.array([[3.0, 4.0], [1.0, 0.0]])
    total = aggregation.noised_sum(updates, clip=1.0, noise_multiplier=0.5, rng=np.random.default_rng(7))
    mean = aggregation.private_mean(updates, clip=1.0, noise_multiplier=0.5, expected_clients=4.0,
                                    rng=np.random.default_rng(7))
    assert np.allclose(mean, total / 4.0)


def test_released_update_is_the_clipped_update_plus_the_round_noise():
    defense = DPFedAvg(clip=1.0, noise_multiplier=0.5)
    rng = np.random.default_rng(1)
    draws = np.stack([defense.released_update(np.array([3.0, 4.0]), rng) for _ in range(20000)])
    assert np.allclose(draws.mean(axis=0), [0.6, 0.8], atol=0.015) and np.allclose(draws.std(axis=0), 0.5, rtol=0.02)
    assert np.array_equal(bench.DEFENSES.get("fedavg")().released_update(np.array([3.0, 4.0]), rng), [3.0, 4.0])


def test_dp_fedavg_samples_clients_by_poisson():
    defense, rng = DPFedAvg(clients=100, fraction=0.3), np.random.default_rng(0)
    counts = np.array([len(defense.choose_clients(rng)) for _ in range(2000)])
    assert abs(counts.mean() - 30) < 0.5 and abs(counts.var() - 100 * 0.3 * 0.7) < 3  # Binomial(100, 0.3)


def test_dp_fedavg_trains_on_digits_above_chance_with_a_client_guarantee(digits):
    model, ctx = fit("dp-fedavg", digits, rounds=8)
    guarantee = ctx.outcome["dp"]
    assert accuracy(model, digits) > 0.5  # chance: 0.1
    assert guarantee.level == "client" and guarantee.steps == 8 and guarantee.sample_rate == DPFedAvg.fraction
    assert guarantee.delta == 1e-5 and guarantee.max_grad_norm == DPFedAvg.clip
    assert guarantee.epsilon == pytest.approx(rdp_epsilon(guarantee), rel=1e-12)
    assert ctx.costs["train_grad_evals"] > 0


@pytest.mark.parametrize(("name", "params"), [("dp-sgd", {"epochs": 2, "batch_size": 32}),
                                              ("dp-fedavg", {"rounds": 2, "clients": 20, "local_epochs": 1})])
def test_private_training_is_deterministic_given_the_seed(small_digits, name, params):
    first, ctx = fit(name, small_digits, seed=3, **params)
    again, ctx_again = fit(name, small_digits, seed=3, **params)
    other, _ = fit(name, small_digits, seed=4, **params)
    assert same_weights(first, again) and not same_weights(first, other)
    assert ctx.outcome["dp"] == ctx_again.outcome["dp"] and ctx.costs == ctx_again.costs


def test_dp_sgd_returns_the_plain_network(small_digits):
    model, _ = fit("dp-sgd", small_digits, epochs=1, batch_size=32, model="cnn-small")
    fresh = bench.MODELS.get("cnn-small")(small_digits.input_shape, 10)
    assert list(model.state_dict()) == list(fresh.state_dict())  # no Opacus wrapper in the checkpoint's keys
    assert not any(hasattr(p, "grad_sample") for p in model.parameters()) and not model.training


def private_step_gradients(name, x, y, **params):
    """The per-sample gradients the private step of defense ``name`` clips for the batch (x, y), on cnn-small
    wrapped as DP-SGD wraps it, and the plain network they were taken on (the random start drawn with seed 5)."""
    torch.manual_seed(0)
    model = bench.MODELS.get("cnn-small")((1, 8, 8), 10)
    wrapped = copy.deepcopy(model)
    nchw_convolutions(wrapped)
    private = GradSampleModule(wrapped)
    loss = bench.DEFENSES.get(name)(**params).member_defense().batch_loss(RunContext(seed=0))
    torch.manual_seed(5)
    loss(AttackHooksOff(private), x, y).backward()
    return [parameter.grad_sample for parameter in wrapped.parameters()], model, loss


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("name", ["dp-sgd", "dp-pgd-at", "dp-trades"])
def test_the_private_step_averages_to_the_members_batch_gradient(small_digits, name):
    """Per-sample gradients of the member's loss, whose mean is the plain network's gradient of the member's loss on
    the same batch: the inner maximisation's passes (hooks off) add none, and every convolution's are right on
    digits' single-channel batches (Opacus alone gives cnn-small's second convolution zeros there)."""
    x, y = torch.from_numpy(small_digits.x_train[:32]), torch.from_numpy(small_digits.y_train[:32])
    samples, model, loss = private_step_gradients(name, x, y, steps=2) if name != "dp-sgd" else \
        private_step_gradients(name, x, y)
    torch.manual_seed(5)
    expected = torch.autograd.grad(loss(model, x, y), list(model.parameters()))
    for per_sample, batch in zip(samples, expected, strict=True):
        assert per_sample.shape[0] == len(x)
        torch.testing.assert_close(per_sample.mean(0), batch, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_dp_pgd_at_per_sample_gradients_are_each_samples_loss_at_its_pgd_example(small_digits):
    x, y = torch.from_numpy(small_digits.x_train[:32]), torch.from_numpy(small_digits.y_train[:32])
    samples, model, _ = private_step_gradients("dp-pgd-at", x, y, steps=3)
    torch.manual_seed(5)  # the same random start: the same PGD examples, crafted on the plain network
    adv = perturb(model, x, lambda xa: F.cross_entropy(model(xa), y), RunContext(seed=0), eps=PGDAT.eps,
                  step=PGDAT.step, steps=3, start="uniform")
    for i in (0, 13, 31):
        grads = torch.autograd.grad(F.cross_entropy(model(adv[i : i + 1]), y[i : i + 1]), list(model.parameters()))
        for per_sample, expected in zip(samples, grads, strict=True):
            torch.testing.assert_close(per_sample[i], expected, rtol=1e-4, atol=1e-6)


def test_dp_pgd_at_counts_the_attack_s_gradients(small_digits):
    _, plain = fit("dp-sgd", small_digits, epochs=1, batch_size=32)
    _, adversarial = fit("dp-pgd-at", small_digits, epochs=1, batch_size=32, steps=3)
    assert adversarial.costs["train_grad_evals"] == 4 * plain.costs["train_grad_evals"]  # same Poisson batches


def test_compositions_are_built_from_their_parts():
    dp_pgd_at, dp_fed_at = bench.DEFENSES.get("dp-pgd-at"), bench.DEFENSES.get("dp-fed-at")
    assert issubclass(dp_pgd_at, DPSGD) and issubclass(dp_fed_at, DPFedAvg)
    names = {f.name for f in dataclasses.fields(dp_pgd_at)}
    assert {f.name for f in dataclasses.fields(DPSGD)} | {"eps", "step", "steps"} == names
    member = dp_pgd_at(eps=0.2, steps=3, lr=0.01, batch_size=16).member_defense()
    assert isinstance(member, PGDAT) and (member.eps, member.steps, member.lr, member.batch_size) == (0.2, 3, 0.01, 16)
    local = dp_fed_at(eps=0.05, clip=0.3).local_defense()
    assert isinstance(local, PGDAT) and local.eps == 0.05 and dp_fed_at().rounds == DPFedAvg.rounds
    assert type(bench.DEFENSES.get("dp-trades")().member_defense()).__name__ == "TRADES"
