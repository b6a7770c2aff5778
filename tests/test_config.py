import pytest

from benchmark.config import build_config, load_toml, parse_eps, parse_plugins
from benchmark.errors import ConfigError


def config(tmp_path, **overrides):
    return build_config(None, {"out": str(tmp_path), "device": "cpu", **overrides})


def test_defaults(tmp_path):
    cfg = config(tmp_path)
    assert cfg.dataset == "digits" and cfg.model == "cnn-small" and cfg.norm == "inf"
    assert [d.name for d in cfg.defenses] == ["standard", "pgd-at"]
    assert [a.name for a in cfg.attacks] == ["fgsm", "pgd", "apgd-ce", "apgd-dlr", "square", "noise"]
    assert cfg.eps == (0.0, 0.05, 0.1, 0.2, 0.3)
    assert cfg.headline_eps == 0.1
    assert cfg.seeds == (0,)


def test_eps_is_sorted_deduplicated_and_starts_at_zero():
    assert parse_eps("0.3, 0.1,0.1", "--eps", "inf") == (0.0, 0.1, 0.3)


@pytest.mark.parametrize(
    ("text", "message"),
    [("-0.1", "finite number ≥ 0"), ("abc", "'abc' is not a number"), ("1.5", "exceeds 1"), ("nan", "finite"),
     ("", "no ε given")],
)
def test_bad_eps(text, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse_eps(text, "--eps", "inf")
    assert str(error.value).startswith("--eps: ")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"defenses": "pgd_at"}, r"--defense: unknown defense 'pgd_at'; did you mean 'pgd-at'\?"),
        ({"attacks": "pgdd"}, r"--attack: unknown attack 'pgdd'; did you mean 'pgd'\?"),
        ({"attacks": "apgd"}, r"--attack: unknown attack 'apgd'; did you mean 'apgd-ce', 'apgd-dlr' or 'apgd-t'\?$"),
        ({"dataset": "digit"}, r"did you mean 'digits'"),
        ({"model": "cnn-smal"}, r"did you mean 'cnn-small'"),
        ({"seeds": "-1"}, r"^--seed: must be an int in \[0, 2147483647\], got -1$"),
        ({"seeds": str(10**22)}, r"^--seed: must be an int in \[0, 2147483647\], got 10000000000000000000000$"),
        ({"seeds": "1.5"}, r"^--seed: must be an int in \[0, 2147483647\], got '1.5'$"),
        ({"n_test": "0"}, r"^--n-test: must be an int in \[1, 1000000\], got 0$"),
        ({"quick": "maybe"}, r"^--quick: must be true or false, got 'maybe'$"),
        ({"defenses": ""}, r"--defense: the defense list is empty"),
        ({"defenses": "pgd-at:epz=0.1"}, r"has no parameter 'epz'; did you mean 'eps'\?"),
        ({"defenses": "pgd-at:steps=two"}, r"^--defense: pgd-at: steps must be an int in \[1, 10000\], got 'two'$"),
        ({"attacks": "pgd:steps=0"}, r"^--attack: pgd: steps must be an int in \[1, 10000\], got 0$"),
        ({"defenses": "pgd-at:epochs=1000000000"}, r"^--defense: pgd-at: epochs must be an int in \[1, 10000\]"),
        ({"attacks": "pgd:steps=99999999999999999999"}, r"pgd: steps must be an int in \[1, 10000\]"),
        ({"defenses": "pgd-at:steps=1,steps=2"}, r"^--defense: pgd-at: parameter 'steps' given twice \('1' and '2'\)"),
        ({"defenses": "pgd-at:steps=3,standard,epochs=1,epochs=2"}, r"^--defense: standard: parameter 'epochs' given "),
        ({"attacks": "suite:quik"}, r"unknown suite 'quik'; did you mean 'suite:quick'\? "),
        ({"defenses": "standard,standard"}, r"listed twice: standard"),
        ({"norm": "1"}, r"unknown norm '1'"),
        ({"device": "tpu"}, r"--device: expected auto, cpu or cuda"),
    ],
)
def test_bad_values_name_the_parameter(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        config(tmp_path, **overrides)


def test_cuda_without_cuda_is_an_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="--device: 'cuda' requested but CUDA is not available"):
        config(tmp_path, device="cuda")


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="--out: cannot create"):
        config(tmp_path, out=str(blocker / "sub"))


def test_plugin_parameters_are_coerced_and_recorded():
    (spec, plain) = parse_plugins("defense", "pgd-at:eps=0.05,steps=3,standard", "--defense")
    assert spec.name == "pgd-at" and dict(spec.params)["eps"] == 0.05 and dict(spec.params)["steps"] == 3
    assert dict(spec.params)["epochs"] == 40  # defaults are recorded too
    assert spec.label == "pgd-at(eps=0.05,steps=3)"
    assert plain.label == "standard"
    assert spec.build().steps == 3


def test_toml_file_and_overrides(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text(
        '[evaluate]\ndataset = "synthetic"\nmodel = "mlp"\neps = [0.2, 0.1]\nseeds = [1, 2]\n'
        'defenses = ["standard", {name = "pgd-at", eps = 0.2}]\n'
    )
    cfg = build_config(load_toml(path), {"out": str(tmp_path), "device": "cpu", "model": "cnn-small"})
    assert cfg.dataset == "synthetic" and cfg.model == "cnn-small"
    assert cfg.eps == (0.0, 0.1, 0.2) and cfg.seeds == (1, 2)
    assert cfg.defenses[1].label == "pgd-at(eps=0.2)"


def test_toml_unknown_key_and_broken_file(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text('[evaluate]\ndatset = "digits"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'datset'; did you mean 'dataset'\?"):
        build_config(load_toml(path), {"out": str(tmp_path)}, file_label=str(path))
    path.write_text("dataset = \n")
    with pytest.raises(ConfigError, match="--config: cannot read"):
        load_toml(path)
    with pytest.raises(ConfigError, match="--config: file not found"):
        load_toml(tmp_path / "missing.toml")


def test_a_binary_config_file_is_one_error(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.\xff\xfe")
    with pytest.raises(ConfigError, match=rf"^--config: {path} is not a TOML file \(not UTF-8 text\)$"):
        load_toml(path)


def test_toml_plugin_lists_take_comma_strings_and_refuse_duplicate_keys(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text('defenses = ["pgd-at:eps=0.05,steps=3", "standard"]\n')
    cfg = build_config(load_toml(path), {"out": str(tmp_path), "device": "cpu"}, file_label=str(path))
    assert [spec.label for spec in cfg.defenses] == ["pgd-at(eps=0.05,steps=3)", "standard"]
    path.write_text('defenses = ["pgd-at:steps=1,steps=2"]\n')
    with pytest.raises(ConfigError, match=r"pgd-at: parameter 'steps' given twice"):
        build_config(load_toml(path), {"out": str(tmp_path), "device": "cpu"}, file_label=str(path))
    path.write_text('defenses = [{name = "pgd-at", steps = 1, steps = 2}]\n')
    with pytest.raises(ConfigError, match=r"^--config: cannot read .*steps"):
        load_toml(path)


def test_suites_expand_and_mix_with_names(tmp_path):
    cfg = config(tmp_path, attacks="suite:quick,deepfool", norm="2")
    assert [a.name for a in cfg.attacks] == ["fgsm", "pgd", "deepfool"]
    assert cfg.eps == (0.0, 0.25, 0.5, 0.75, 1.0) and cfg.headline_eps == 0.5
    cfg = config(tmp_path, attacks="pgd:steps=3,suite:quick")
    assert [a.label for a in cfg.attacks] == ["pgd(steps=3)", "fgsm", "pgd"]  # two different PGDs
    full = config(tmp_path, attacks="suite:full")
    import benchmark as bench

    assert {a.name for a in full.attacks} == {n for n in bench.ATTACKS.names() if "inf" in bench.ATTACKS.get(n).norms}
    assert "deepfool" not in {a.name for a in full.attacks} and "cw-linf" in {a.name for a in full.attacks}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"attacks": "suite:fulll"}, r"unknown suite 'fulll'; did you mean 'suite:full'\?"),
        ({"attacks": "suite:quick,deepfool"}, r"attack 'deepfool' supports L2, not the run's Linf \(--norm\)"),
        ({"attacks": "cw-linf", "norm": "2"}, r"attack 'cw-linf' supports Linf, not the run's L2"),
    ],
)
def test_attack_that_does_not_fit_the_norm_is_refused(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        config(tmp_path, **overrides)


def test_survivor_mode_defaults_to_shared_and_is_validated(tmp_path):
    assert build_config(None, {"out": str(tmp_path)}).survivors == "shared"
    assert build_config({"survivors": "per-attack"}, {"out": str(tmp_path)}).survivors == "per-attack"
    with pytest.raises(ConfigError, match=r"^survivors \(in config file\): must be one of shared, per-attack, got "
                                          r"'shraed'; did you mean 'shared'\?$"):
        build_config({"survivors": "shraed"}, {"out": str(tmp_path)})


@pytest.mark.parametrize("count", ["0", "100000000000"])
def test_seed_count_has_a_range(tmp_path, count):
    from click.testing import CliRunner

    from benchmark.cli import main

    result = CliRunner().invoke(main, ["evaluate", "--seeds", count, "--out", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"bench: error: --seeds: must be an int in [1, 1000], got {count}"


def test_n_test_beyond_the_test_set_is_refused_and_quick_takes_at_most_its_share(tmp_path):
    from benchmark.plan import DataFacts, plan

    def jobs(**overrides):
        config = build_config(None, {"out": str(tmp_path), "dataset": "synthetic", "model": "mlp",
                                     "defenses": "standard", **overrides})
        return plan(config, DataFacts("fingerprint", 80))

    assert jobs(n_test="80")[0].n_test == 80 and jobs(n_test="5")[0].n_test == 5
    assert jobs()[0].n_test == 80 and jobs(quick="true")[0].n_test == 80  # --quick's 100 is a cap, not a demand
    with pytest.raises(ConfigError, match=r"^--n-test: 81 is more than the 80 test samples of synthetic$"):
        jobs(n_test="81")
