"""Plugin parameter constraints: the constraint types, the registry-wide contract (every field of every built-in
plugin is declared, and a bad value for any of them is refused by the real CLI before any work), and the checks
across fields of the federated defenses."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
from click.testing import CliRunner

import benchmark as bench
from benchmark.cli import main
from benchmark.config import parse_plugins
from benchmark.constraints import (
    Boolean,
    Constrained,
    Interval,
    Options,
    Text,
    check_params,
    describe_fields,
    missing_constraints,
    parameter_constraints,
)
from benchmark.errors import ConfigError

REGISTRIES = {"attack": bench.ATTACKS, "defense": bench.DEFENSES, "dataset": bench.DATASETS, "model": bench.MODELS,
              "privacy": bench.PRIVACY, "client-attack": bench.CLIENT_ATTACKS}
PLUGINS = [(kind, name) for kind, registry in REGISTRIES.items() for name in registry.names()]
PARAMETERS = [(kind, name, field.name) for kind, name in PLUGINS if kind in ("attack", "defense", "privacy")
              for field in dataclasses.fields(REGISTRIES[kind].get(name)) if field.init]


def bad_values(constraint) -> list:
    """Values the constraint must refuse: just outside each finite bound, and a value of the wrong type."""
    if isinstance(constraint, Options):
        return ["bogus"]
    if isinstance(constraint, Boolean):
        return ["maybe"]
    if isinstance(constraint, Text):  # any string is one: what it says is its plugin's to check (byzantine_params:
        return []  # tests/test_federated_attacks.py)
    values = ["abc" if constraint.type is float else 1.5]
    if constraint.high is not None:
        values.append(constraint.high + 1)
    if constraint.low is not None:
        values.append(constraint.low - 1)
    return values


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_every_field_of_every_builtin_plugin_declares_a_constraint(kind, name):
    plugin = REGISTRIES[kind].get(name)
    if not dataclasses.is_dataclass(plugin):  # a model builder: a function of (input_shape, nb_classes) only
        assert kind == "model" and callable(plugin)
        return
    assert issubclass(plugin, Constrained), f"{name} is not checked when built in Python"
    assert missing_constraints(plugin) == []
    assert set(plugin.parameter_constraints) == {f.name for f in dataclasses.fields(plugin) if f.init}


@pytest.mark.parametrize(("kind", "name", "param"), PARAMETERS)
def test_a_bad_value_of_any_parameter_is_refused_by_the_cli_before_any_work(tmp_path, kind, name, param):
    plugin = REGISTRIES[kind].get(name)
    constraint = plugin.parameter_constraints[param]
    norm = "inf" if "inf" in getattr(plugin, "norms", ("inf",)) else "2"
    runner = CliRunner()
    for index, value in enumerate(bad_values(constraint)):
        out = tmp_path / str(index)
        result = runner.invoke(main, ["evaluate", "--dataset", "synthetic", "--model", "mlp", "--quick",
                                      "--device", "cpu", "--norm", norm, "--out", str(out),
                                      f"--{kind}", f"{name}:{param}={value}"])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2, (value, result.output)
        assert len(lines) == 1 and lines[0].startswith(f"bench: error: --{kind}: {name}: {param} must be "), lines
        assert constraint.describe() in lines[0]
        assert not out.exists() or not any(out.iterdir())  # no store, no checkpoint: nothing ran


@pytest.mark.parametrize(("kind", "name", "param"), PARAMETERS)
def test_a_plugin_built_in_python_checks_its_parameters(kind, name, param):
    plugin = REGISTRIES[kind].get(name)
    for bad in bad_values(plugin.parameter_constraints[param]):
        with pytest.raises(ValueError, match=rf"^{plugin.__name__}: {param} must be .*, got {re.escape(repr(bad))}$"):
            plugin(**{param: bad})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pgd:steps=0", r"^--attack: pgd: steps must be an int in \[1, 10000\], got 0$"),
        ("pgd:steps=99999999999999999999", r"steps must be an int in \[1, 10000\], got 99999999999999999999$"),
        ("cw-l2:steps=1000000", r"cw-l2: steps must be an int in \[1, 10000\]"),
        ("deepfool:candidates=0", r"deepfool: candidates must be an int in \[1, 1000\], got 0"),
        ("hopskipjump:max_eval=0", r"hopskipjump: max_eval must be an int in \[1, 1000000\], got 0"),
        ("hopskipjump:init_eval=300", r"hopskipjump: init_eval must be at most max_eval = 200, got 300"),
        ("square:p_init=1", r"square: p_init must be a number in \(0, 1\), got 1.0"),
        ("cw-linf:const_factor=1", r"const_factor must be a number in \[1.1, 100\], got 1.0"),
        ("cw-linf:initial_const=20", r"initial_const must be below largest_const = 10, got 20"),
    ],
)
def test_attack_parameters_without_checks_before_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_plugins("attack", text, "--attack")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pgd-at:epochs=1000000000", r"^--defense: pgd-at: epochs must be an int in \[1, 10000\], got 1000000000$"),
        ("fedavg:clients=100000", r"fedavg: clients must be an int in \[1, 1000\]"),
        ("standard:lr=nan", r"standard: lr must be a number in \(0, 10\], got nan"),
        ("standard:lr=1e400", r"standard: lr must be a number in \(0, 10\], got inf"),
        ("pgd-at:steps=1,steps=2", r"^--defense: pgd-at: parameter 'steps' given twice \('1' and '2'\)"),
        ("fedavg:byzantine=9,clients=10,aggregation=krum",
         r"fedavg: krum assumes at most f = 2 Byzantine clients per round, but up to 9 of the 10 clients per round "
         r"are Byzantine \(byzantine = 9\): set f=9 and clients per round ≥ 21$"),
        ("fedavg:byzantine=3,aggregation=multi-krum", r"multi-krum assumes at most f = 2 .*: set f=3$"),
        ("fedavg:byzantine=2,aggregation=bulyan,f=1,clients=12", r"bulyan assumes at most f = 1 .*: set f=2$"),
        ("fedavg:byzantine=3,aggregation=trimmed-mean",
         r"trimmed-mean drops ⌊trim_ratio·n⌋ = 2 updates at each end, but up to 3 of the 10 .*: set trim_ratio=0.3$"),
        ("fedavg:byzantine=5,aggregation=trimmed-mean", r"use fewer Byzantine clients or more clients per round$"),
    ],
)
def test_defense_budgets_duplicates_and_byzantine_tolerance_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_plugins("defense", text, "--defense")


def test_robust_rules_that_tolerate_the_byzantine_clients_are_accepted():
    specs = parse_plugins("defense", "fedavg:byzantine=2,aggregation=krum,fedavg:byzantine=3,aggregation=trimmed-mean,"
                                     "trim_ratio=0.3,fedavg:byzantine=9,aggregation=median", "--defense")
    assert [dict(spec.params)["byzantine"] for spec in specs] == [2, 3, 9]


def test_a_third_party_plugin_without_a_table_is_only_type_checked():
    @dataclasses.dataclass(frozen=True)
    class Outside:
        epochs: int = 1
        tag: str = "x"
        scale: float = 1.0

    bench.DEFENSES.add("outside-test", Outside)
    try:
        (spec,) = parse_plugins("defense", "outside-test:epochs=5000000,tag=7,scale=2", "--defense")
        assert dict(spec.params) == {"epochs": 5_000_000, "tag": "7", "scale": 2.0}  # no range, types converted
        with pytest.raises(ConfigError, match=r"^--defense: outside-test: epochs must be an int, got 'two'$"):
            parse_plugins("defense", "outside-test:epochs=two", "--defense")
    finally:
        bench.DEFENSES.remove("outside-test")


@pytest.mark.parametrize(
    ("constraint", "inside", "outside", "text"),
    [
        (Interval(int, 1, 10), [1, 10], [0, 11, 1.0, True, "3"], "an int in [1, 10]"),
        (Interval(float, 0, 1, closed="right"), [1, 0.5, 1e-9], [0, -0.1, 1.1, math.nan, False], "a number in (0, 1]"),
        (Interval(float, 0, 0.5, closed="left"), [0, 0.49], [0.5, -1e-9], "a number in [0, 0.5)"),
        (Interval(float, 0, None), [0.0, 1e300], [math.inf, -1], "a number in [0, inf)"),
        (Options("iid", "dirichlet"), ["iid"], ["IID", 1, None], "one of iid, dirichlet"),
        (Boolean(), [True, False], [1, "true", None], "true or false"),
    ],
)
def test_constraints_accept_inside_refuse_outside_and_say_what_they_allow(constraint, inside, outside, text):
    assert all(constraint.accepts(value) for value in inside)
    assert not any(constraint.accepts(value) for value in outside)
    assert constraint.describe() == text


def test_text_is_converted_only_when_parsing():
    table = {"steps": Interval(int, 1, 10), "on": Boolean(), "eps": Interval(float, 0, 1)}
    assert check_params("p", table, {"steps": " 3 ", "on": "off", "eps": "1"}, parse=True) == {
        "steps": 3, "on": False, "eps": 1.0}
    with pytest.raises(ValueError, match=r"^p: steps must be an int in \[1, 10\], got '3'$"):
        check_params("p", table, {"steps": "3"})
    with pytest.raises(ValueError, match=r"did you mean 'krum' or 'krum-multi'\?$"):
        check_params("p", {"rule": Options("mean", "krum", "krum-multi")}, {"rule": "kr"})


def test_bench_list_shows_each_parameter_with_its_range():
    assert describe_fields(bench.ATTACKS.get("pgd")) == ["steps=10 [1,10000]", "step_fraction=0.25 (0,1]",
                                                         "random_start=True true|false"]
    result = CliRunner().invoke(main, ["list", "defenses"])
    assert "aggregation=mean mean|median|trimmed-mean|krum|multi-krum|bulyan" in result.output
    assert "epochs=40 [1,10000]" in result.output
    assert parameter_constraints(bench.MODELS.get("mlp")) == {}
