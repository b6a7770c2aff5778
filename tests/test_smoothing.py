"""Randomized smoothing (defenses/smoothing.py) wired into the harness: its parameter checks, the L∞ refusal before
any work, the certification stage (benchmark/certify_stage.py) and the record field it fills, the
``certificate_violated`` flag, and the certified columns of the leaderboard (benchmark/leaderboard_certified.py,
benchmark/privacy_columns.py) in every format, only on boards with certified rows."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch

import benchmark as bench
from benchmark.certify import ABSTAIN, Certification
from benchmark.certify_stage import CertifiedOutcome, base_classifier, certification_of, outcome
from benchmark.config import build_config, parse_plugins
from benchmark.errors import ConfigError
from benchmark.leaderboard import UNRELIABLE, build_leaderboard, table_cells
from benchmark.plan import Job, plan
from benchmark.preflight import check_certified_norm, preflight
from benchmark.record import AttackRun, Record
from benchmark.render import render
from benchmark.store import Store
from benchmark.sweep import AttackOutcome, SweepResult
from benchmark.validity import Probes, certificate_violated, verdicts
from tests.test_store import record

EPS = (0.0, 0.25, 0.5)


def spec_of(text: str):
    (spec,) = parse_plugins("defense", text, "--defense")
    return spec


def test_smoothing_trains_noise_aug_at_its_sigma_and_certifies_with_cohen_s_settings(tmp_path):
    config = build_config({}, {"defenses": "smoothing:sigma=0.25,noise-aug:sigma=0.25,randomized-smoothing:sigma=0.5",
                               "norm": "2", "device": "cpu", "out": str(tmp_path), "quick": True}, create_out=False)
    jobs = {job.defense.label: job for job in plan(config)}
    assert jobs["smoothing"].train_hash == jobs["noise-aug(sigma=0.25)"].train_hash
    assert jobs["smoothing(sigma=0.5)"].trained == spec_of("noise-aug:sigma=0.5")
    assert jobs["smoothing"].job_hash != jobs["noise-aug(sigma=0.25)"].job_hash
    assert spec_of("smoothing:sigma=0.5,base_params=sigma=0.1").build().trained_spec() == spec_of("noise-aug:sigma=0.1")
    assert spec_of("smoothing:base=standard").build().trained_spec() == spec_of("standard")
    defense = spec_of("smoothing").build()
    cpu, gpu = defense.certify_settings("cpu"), defense.certify_settings("cuda:0")
    assert (cpu.n0, cpu.n, cpu.alpha, cpu.batch, cpu.sigma) == (100, 10_000, 0.001, 1000, 0.25)
    assert gpu.n == 100_000 and spec_of("smoothing:n=500").build().certify_settings("cuda").n == 500


@pytest.mark.parametrize(("text", "message"), [
    ("smoothing:sigma=0", r"smoothing: sigma must be a number in \(0, inf\), got 0"),
    ("smoothing:sigma=-0.1", r"smoothing: sigma must be a number in \(0, inf\)"),
    ("smoothing:n0=100,n=99", r"smoothing: n must be at least n0 \(N < n0: N=99, n0=100\)"),
    ("smoothing:n0=20000", r"smoothing: n must be at least n0 \(N < n0: N=10000, n0=20000\)"),
    ("smoothing:alpha=0", r"smoothing: alpha must be a number in \(0, 1\), got 0"),
    ("smoothing:alpha=1", r"smoothing: alpha must be a number in \(0, 1\), got 1"),
    ("smoothing:cert_batch=0", r"smoothing: cert_batch must be an int in \[1, inf\)"),
])
def test_bad_certification_parameters_are_refused_naming_the_parameter(text, message):
    with pytest.raises(ConfigError, match=rf"^--defense: {message}"):
        spec_of(text)


def test_smoothing_under_linf_is_refused_before_any_work(tmp_path):
    from click.testing import CliRunner

    from benchmark.cli import main

    options = {"defenses": "standard,smoothing", "dataset": "synthetic", "model": "mlp", "out": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"^--defense: smoothing: randomized smoothing certifies L2 radii, and this "
                                          r"run's norm is L∞ \(--norm inf\); use --norm 2$"):
        preflight(build_config({}, {**options, "norm": "inf"}, create_out=False))
    check_certified_norm(build_config({}, {**options, "norm": "2"}, create_out=False))  # L2: accepted
    check_certified_norm(build_config({}, {**options, "defenses": "gaussian-input"}, create_out=False))
    result = CliRunner().invoke(main, ["evaluate", "--defense", "smoothing", "--dataset", "synthetic", "--model",
                                       "mlp", "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "use --norm 2" in result.stderr and not (tmp_path / "run" / "bench.db").exists()


def tiny_job(text: str, seed: int = 0) -> tuple[Job, torch.nn.Module]:
    spec = spec_of(text)
    torch.manual_seed(0)
    net = bench.MODELS.get("mlp")((1, 6, 6), 4)
    job = Job(dataset="synthetic", model="mlp", defense=spec, seed=seed, attacks=(), eps=EPS, norm="2", device="cpu",
              quick=True, n_test=6, data_fingerprint="", versions=())
    return job, spec.build().inference_model(net)


class Constant(torch.nn.Module):
    """Scores class 2 when the first input value is above 0.5, else class 1 (4 classes)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        above = (x.flatten(1)[:, :1] > 0.5).float()
        return torch.cat([torch.zeros_like(above), 1 - above, above, torch.zeros_like(above)], dim=1)


def test_a_smoothing_row_predicts_as_the_smoothed_classifier_and_differentiates_single_draws():
    model = spec_of("smoothing:sigma=0.01,n0=50").build().inference_model(Constant())
    assert type(model).__name__ == "Smoothed" and model.votes == 50 and model.randomized
    x = torch.full((3, 1, 6, 6), 0.9)
    x[1] = 0.1
    with torch.no_grad():
        scores = model(x)
    assert scores.argmax(1).tolist() == [2, 1, 2]  # far from the boundary at σ = 0.01: every draw votes alike
    assert torch.allclose(scores[0], torch.log(torch.tensor([0.5, 0.5, 50.5, 0.5]) / 52))
    assert type(model.with_mode("bpda")).__name__ == "Smoothed" and model.with_mode("bpda").votes == 50
    with torch.enable_grad():
        assert torch.equal(model(x), Constant()(x))  # one draw through ART's noise (σ = 0.01 keeps the class)


X = np.random.default_rng(0).random((6, 1, 6, 6)).astype(np.float32)
Y = np.array([0, 1, 2, 3, 0, 1])


def test_the_stage_certifies_the_first_samples_through_the_clipped_base_network_and_round_trips_the_store(tmp_path):
    job, model = tiny_job("smoothing:sigma=0.5,n0=10,n=100,cert_batch=64,cert_samples=4")
    found = certification_of(job, X, Y, model, 4)
    certification = found.certification
    assert found.samples == 4 and certification.forward_passes == 4 * 110 and certification.seed == 0
    assert (certification.sigma, certification.n0, certification.n, certification.alpha) == (0.5, 10, 100, 0.001)
    assert set(found.accuracy) == {"0", "0.25", "0.5"} and 0 <= found.abstain_rate <= 1
    expected, abstain = certification.curve(Y[:4], [0.25, 0.5])
    assert [found.accuracy_at(e) for e in (0.25, 0.5)] == list(expected) and found.abstain_rate == abstain
    assert certification_of(job, X, Y, model, 4).certification.predicted == certification.predicted  # seeded
    assert certification_of(tiny_job("gaussian-input")[0], X, Y, model, 4) is None  # nothing to certify
    wide = torch.from_numpy(X * 3 - 1)
    with torch.no_grad():
        assert torch.equal(base_classifier(model)(wide), model.net(wide.clamp(0, 1)))
    stored = record(norm="2", eps=EPS, certification=found)
    with Store(tmp_path) as store:
        store.put(stored)
        assert store.records() == [stored]
    old = {key: value for key, value in stored.to_json().items() if key != "certification"}
    assert Record.from_json(old).certification is None  # a record from before the field


def certified(radius: tuple[float, ...], predicted=(0, 1, 2, 3)) -> CertifiedOutcome:
    certification = Certification(sigma=0.25, n0=100, n=10_000, alpha=0.001, batch=1000, predicted=predicted,
                                  radius=radius, seconds=1.5, forward_passes=len(radius) * 10_100)
    return outcome(certification, np.array([0, 1, 2, 3][: len(radius)]), EPS)


def sweep(broken_at=(1, 3, 3, 2)) -> SweepResult:
    """Four samples; by default the attacks break sample 0 at ε = 0.25 and sample 3 at 0.5 (robust: 0.75, 0.5)."""
    attack = AttackOutcome(broken_at=np.array(broken_at), seconds=1.0, grad_evals=1, queries=1, attacked=4)
    return SweepResult(eps=EPS, correct=np.ones(4, dtype=bool), outcomes={"pgd+eot": attack})


def test_a_certificate_above_the_empirical_robust_accuracy_is_flagged_and_an_honest_one_is_not():
    honest = certified((0.1, 0.6, 0.6, 0.3))  # certified: 0.75 at 0.25, 0.5 at 0.5, as high as the attacks left
    assert honest.accuracy == {"0": 1.0, "0.25": 0.75, "0.5": 0.5}
    assert not certificate_violated(sweep(), honest) and "certificate_violated" not in verdicts(
        sweep(), Probes(chance=0.25), certified=(honest,))
    planted = certified((0.3, 0.6, 0.6, 0.6))  # sample 0 certified at 0.25, which the attacks broke there
    assert certificate_violated(sweep(), planted)
    assert verdicts(sweep(), Probes(chance=0.25), certified=(planted,)) == ["certificate_violated"]
    assert certificate_violated(sweep(), certified((0.1, 0.6, 0.6, 0.6)))  # only at 0.5
    # held on the certified samples: the first two, both broken at ε = 0.25 (all four: 0.5 robust there)
    first_two = certified((0.6, 0.1), predicted=(0, 1))
    assert first_two.accuracy_at(0.25) == 0.5 and certificate_violated(sweep((1, 1, 3, 3)), first_two)
    assert not certificate_violated(sweep((1, 1, 3, 3)), certified((0.1, 0.6), predicted=(0, ABSTAIN)))
    assert "certificate_violated" in UNRELIABLE


def board_records(certify: bool = True) -> list[Record]:
    """smoothing (2 seeds, certified) and noise-aug (1 seed) on an L2 grid, or the same without certificates."""
    run = {"pgd": AttackRun(seconds=0.5, grad_evals=4, queries=8, broken_at=(1, 3, 3, 2))}
    common = {"norm": "2", "eps": EPS, "robust_accuracy": {"0": 1.0, "0.25": 0.75, "0.5": 0.5}, "runs": run,
              "correct": (1, 1, 1, 1), "attacks": {"pgd": {}}}
    return [record("s0", "smoothing", seed=0, certification=certified((0.1, 0.6, 0.6, 0.3)) if certify else None,
                   **common),
            record("s1", "smoothing", seed=1, certification=certified((0.1, 0.6, 0.3, 0.0),
                                                                       predicted=(0, 1, 2, ABSTAIN))
                   if certify else None, **common),
            record("n0", "noise-aug", **common)]


CERTIFIED_TITLES = ["cert. ε=0.25 %", "cert. ε=0.5 %", "abstain %"]


def test_the_board_shows_certified_columns_and_costs_in_every_format_only_with_certified_rows():
    board = build_leaderboard(board_records(), headline_eps=0.25)
    header, body = table_cells(board)
    cells = {row[1]: dict(zip(header, row, strict=True)) for row in body}
    assert header.index("abstain %") < header.index("train s") < header.index("cert s") < header.index("flags")
    assert cells["smoothing"]["cert. ε=0.25 %"] == "62.5 ± 17.7"
    assert cells["smoothing"]["cert. ε=0.5 %"] == "37.5 ± 17.7"
    assert cells["smoothing"]["abstain %"] == "12.5 ± 17.7" and cells["smoothing"]["cert s"] == "1.5"
    assert cells["smoothing"]["cert passes"] == "40400" and cells["noise-aug"]["cert. ε=0.25 %"] == "–"
    markdown = render(board, "md")
    assert "Cohen et al. 2019" in markdown and "smoothing: σ=0.25, n0=100, N=10,000, α=0.001, 4 samples" in markdown
    assert "Privacy per seed" not in markdown
    rows = {(row["defense"], row["seed"]): row for row in csv.DictReader(io.StringIO(render(board, "csv")))}
    assert [row["certified_0.25"] for row in rows.values()] == ["", "0.75", "0.5"]  # in rank order
    first, second = rows["smoothing", "0"], rows["smoothing", "1"]
    assert second["abstain_rate"] == "0.25" and second["certified_0"] == "0.75" and "mia_auc" not in first
    assert first["cert_n"] == "10000" and first["cert_forward_passes"] == "40400" and first["cert_sigma"] == "0.25"
    html = render(board, "html")
    assert all(f"<th>{title}</th>" in html for title in CERTIFIED_TITLES) and "certified (L2 radius)" in html  # plot
    tex = render(board, "tex")
    assert r"Cert.\ $\epsilon=0.25$" in tex and r"$\sigma=0.25$, $n_0=100$, $N=10{,}000$" in tex
    assert "Privacy columns" not in tex
    summary = {entry["defense"]: entry for entry in json.loads(render(board, "json"))["summary"]}
    assert summary["smoothing"]["privacy"]["certified"]["accuracy"]["0.25"] == [0.75, 0.5]
    assert "privacy" not in summary["noise-aug"]
    plain = build_leaderboard(board_records(certify=False), headline_eps=0.25)
    for fmt in ("md", "csv", "html", "json"):
        text = render(plain, fmt)
        assert not any(title in text for title in [*CERTIFIED_TITLES, "cert s", "certified_", "Cohen"]), fmt
    assert "Cert." not in render(plain, "tex")


def test_the_robustness_plot_draws_the_certified_curve_beside_the_empirical_one():
    from benchmark.render.plots import robustness_figure

    axes = robustness_figure(build_leaderboard(board_records(), headline_eps=0.25)).axes[0]
    (curve,) = [line for line in axes.get_lines() if line.get_label() == "smoothing: certified (L2 radius)"]
    assert list(curve.get_ydata()) == [87.5, 62.5, 37.5] and curve.get_linestyle() == "--"


def test_a_smoothing_run_records_its_certificates_and_shows_them(tmp_path):
    from benchmark.pipeline import run_config

    config = build_config({}, {"dataset": "synthetic", "model": "mlp", "quick": True, "device": "cpu", "norm": "2",
                               "eps": "0,0.25,0.5", "attacks": "fgsm", "out": str(tmp_path), "n_test": "12",
                               "defenses": "smoothing:n0=10,n=100,cert_samples=8"})
    board = run_config(config, executor="inline")
    with Store(tmp_path) as store:
        (stored,) = store.records()
    found = stored.certification
    assert found.samples == 8 and found.certification.n == 100 and found.certification.seed == 0
    assert set(found.accuracy) == {"0", "0.25", "0.5"} and "certificate_violated" not in stored.flags
    assert {"fgsm", "fgsm+eot"} <= set(stored.runs) and "cert. ε=0.25 %" in table_cells(board)[0]
