"""A planted backdoor is scored with the record (``benchmark/backdoor_stage.py``): against plain FedAvg (40 rounds,
cnn-small), two of ten clients with a 3×3 trigger and model replacement, honest in the last round, send most
non-target digits to the target; norm bounding stops it. The record also names the Byzantine clients."""

from __future__ import annotations

import pytest
import torch

import benchmark as bench
from benchmark.api import RunContext
from benchmark.backdoor_stage import backdoor_of, threat_of
from benchmark.config import parse_plugins
from benchmark.plan import Job, load_dataset


def scored(text: str):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = load_dataset("digits")
    (spec,) = parse_plugins("defense", text, "--defense")
    model = bench.MODELS.get("cnn-small")(data.input_shape, data.nb_classes)
    spec.build().fit(model, data, RunContext(seed=0))
    job = Job(dataset="digits", model="mlp", defense=spec, seed=0, attacks=(), eps=(0.0,), norm="inf", device="cpu",
              quick=False, n_test=len(data.y_test), data_fingerprint="", versions=())
    with torch.no_grad():
        clean = (model(torch.from_numpy(data.x_test)).argmax(1).numpy() == data.y_test).mean()
    return clean, backdoor_of(job, data.x_test, data.y_test, lambda x: model(torch.from_numpy(x)).detach().numpy())


@pytest.mark.heavy  # 15 s; the reduced matrix (tests/test_matrix.py) runs the stage in CI, and the committed
# reference matrix's numbers are held by tests/test_reference_matrix.py
def test_a_backdoor_beats_fedavg_and_norm_bounding_stops_it():
    planted = "fedavg:byzantine=2,byzantine_attack=backdoor,byzantine_params=quiet_rounds=1"
    clean, attacked = scored(planted)
    bounded_clean, bounded = scored(planted + ",aggregation=norm-bounding,norm_bound=0.5")
    assert attacked.target == 0 and attacked.n == 324  # the 360 test digits less the 36 zeros
    assert attacked.success_rate >= 0.9 and clean >= 0.9, (attacked, clean)
    assert bounded.success_rate <= 0.2 and bounded_clean >= 0.9, (bounded, bounded_clean)


def test_no_backdoor_no_score():
    data = load_dataset("digits")
    (spec,) = parse_plugins("defense", "fedavg:byzantine=2,byzantine_attack=ipm", "--defense")
    job = Job(dataset="digits", model="mlp", defense=spec, seed=0, attacks=(), eps=(0.0,), norm="inf", device="cpu",
              quick=False, n_test=1, data_fingerprint="", versions=())
    assert backdoor_of(job, data.x_test[:1], data.y_test[:1], lambda x: None) is None


def job_of(text: str) -> Job:
    (spec,) = parse_plugins("defense", text, "--defense")
    return Job(dataset="digits", model="mlp", defense=spec, seed=0, attacks=(), eps=(0.0,), norm="inf", device="cpu",
               quick=False, n_test=1, data_fingerprint="", versions=())


def test_the_record_names_the_byzantine_clients_and_whether_their_attack_was_omniscient():
    alie = threat_of(job_of("fedavg:byzantine=2,byzantine_attack=alie,byzantine_sampling=round,attack_start=3"))
    assert (alie.attack, alie.kind, alie.omniscient, alie.attackers, alie.sampling, alie.attack_start) == \
        ("alie", "update", True, 2, "round", 3)
    assert alie.params == {"z": None}  # none: Baruch et al.'s z from n and f
    backdoor = threat_of(job_of("fedavg:byzantine=1,byzantine_attack=backdoor,byzantine_params=target=3"))
    assert (backdoor.kind, backdoor.omniscient, backdoor.sampling) == ("data", False, "fixed")
    assert backdoor.params["target"] == 3 and backdoor.params["poison_fraction"] == 0.3125
    assert threat_of(job_of("fedavg")) is None and threat_of(job_of("standard")) is None
