"""``--ibp`` (benchmark/ibp_stage.py): IBP-verified accuracy per ε of a job's grid, the check that a certificate never
claims more than the attacks left, and the option's refusal on an L2 run."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import benchmark as bench
from benchmark.config import build_config
from benchmark.errors import ConfigError
from benchmark.ibp_stage import IBPResult, check_model, ibp_of, violated
from benchmark.plan import load_dataset, plan


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_the_certificate_per_eps_is_nested_and_starts_at_clean_accuracy(digits):
    torch.manual_seed(0)
    model = bench.MODELS.get("cnn-small")(digits.input_shape, digits.nb_classes).eval()
    x, y = digits.x_test[:64], digits.y_test[:64]
    job = SimpleNamespace(ibp=True, eps=(0.0, 0.001, 0.01, 0.1))
    result = ibp_of(job, model, x, y, batch_size=32)
    with torch.no_grad():
        correct = (model(torch.from_numpy(x)).argmax(1).numpy() == y)
    assert result.verified["0"] == pytest.approx(correct.mean())
    values = [result.verified[key] for key in ("0", "0.001", "0.01", "0.1")]
    assert values == sorted(values, reverse=True) and values[-1] == 0.0  # an untrained net verifies nothing at 0.1
    assert len(result.verified_below) == 64 and result.forward_passes == 2 * 64 * 4 and result.seconds > 0
    assert IBPResult.from_json(dict(result.__dict__)) == result
    assert ibp_of(SimpleNamespace(ibp=False, eps=(0.0,)), model, x, y, batch_size=32) is None


def test_a_certificate_above_the_empirical_robust_accuracy_is_a_violation():
    result = IBPResult(verified={"0": 0.9, "0.1": 0.4}, verified_below=(2, 1), seconds=0.1, forward_passes=4)
    assert not violated(result, {"0": 0.9, "0.1": 0.5})
    assert not violated(result, {"0": 0.9, "0.1": 0.4})
    assert violated(result, {"0": 0.9, "0.1": 0.3})  # planted: the certificate claims 40 %, the attacks left 30 %
    assert not violated(None, {"0.1": 0.0})


def test_ibp_is_refused_on_an_l2_run_and_a_model_it_cannot_bound(tmp_path):
    with pytest.raises(ConfigError, match=r"ibp.*certifies L∞ boxes, not L2 balls: use --norm inf"):
        build_config({}, {"ibp": True, "norm": "2", "out": str(tmp_path)}, create_out=False)
    with pytest.raises(ValueError, match="IBP cannot bound a Tanh layer"):
        check_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2), torch.nn.Tanh()))


def test_ibp_changes_the_job_hash_only_when_asked(tmp_path):
    def hashes(**options):
        config = build_config({}, {"quick": True, "device": "cpu", "out": str(tmp_path), **options}, create_out=False)
        return [(job.train_hash, job.job_hash) for job in plan(config)]

    plain, certified = hashes(), hashes(ibp=True)
    assert [t for t, _ in plain] == [t for t, _ in certified]  # the same training
    assert all(a != b for (_, a), (_, b) in zip(plain, certified, strict=True))
    assert hashes(ibp=False) == plain


def test_eot_draws_are_checked_and_hashed_only_when_given(tmp_path):
    def config(**options):
        return build_config({}, {"quick": True, "device": "cpu", "out": str(tmp_path), **options}, create_out=False)

    with pytest.raises(ConfigError, match=r"^--eot-draws: must be an int in \[1, 10000\], got 0"):
        config(eot_draws="0")
    plain, five = plan(config()), plan(config(eot_draws="5"))
    assert five[0].eot_draws == 5 and plain[0].eot_draws is None
    assert plain[0].job_hash != five[0].job_hash and plain[0].train_hash == five[0].train_hash
