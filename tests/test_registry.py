import sys
import textwrap

import pytest

import benchmark as bench
from benchmark.errors import UnknownNameError
from benchmark.registry import Registry, close_names, did_you_mean


def make_registry() -> Registry:
    return Registry("widget")


def test_register_get_alias_and_names():
    registry = make_registry()

    @registry.register("alpha-one", "a1")
    class AlphaOne:
        pass

    registry.add("beta", "collections:OrderedDict")
    assert registry.get("alpha-one") is AlphaOne
    assert registry.get("a1") is AlphaOne
    assert registry.canonical("a1") == "alpha-one"
    assert registry.names() == ["alpha-one", "beta"]
    assert registry.names("a*") == ["alpha-one"]
    assert "a1" in registry and "gamma" not in registry


def test_lazy_entry_is_imported_on_get():
    from collections import OrderedDict

    registry = make_registry()
    registry.add("ordered", "collections:OrderedDict")
    assert registry.get("ordered") is OrderedDict


def test_unknown_name_suggests_closest():
    registry = make_registry()
    registry.add("pgd-at", object)
    with pytest.raises(UnknownNameError, match=r"unknown widget 'pgd_at'; did you mean 'pgd-at'\?"):
        registry.get("pgd_at")
    with pytest.raises(UnknownNameError, match="known: pgd-at"):
        registry.get("zzzzzz")


def test_names_that_start_with_the_text_come_first():
    attacks = ["apgd-ce", "apgd-dlr", "pgd", "autoattack", "aa"]
    assert close_names("apgd", attacks) == ["apgd-ce", "apgd-dlr"]  # difflib alone picks 'pgd'
    assert close_names("pgdd", attacks) == ["pgd"]
    assert close_names("", attacks) == []
    assert did_you_mean("a", attacks, template="; did you mean {}?") == (
        "; did you mean 'aa', 'apgd-ce', 'apgd-dlr' or 'autoattack'?")
    with pytest.raises(UnknownNameError,
                       match=r"unknown attack 'apgd'; did you mean 'apgd-ce', 'apgd-dlr' or 'apgd-t'\?$"):
        bench.ATTACKS.get("apgd")


def test_same_object_twice_is_noop_and_clash_is_error():
    registry = make_registry()
    registry.add("x", int)
    registry.add("x", int)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("x", float)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("y", float, aliases=["x"])


def test_builtins_are_registered_on_first_lookup():
    assert {"standard", "pgd-at"} <= set(bench.DEFENSES.names())
    assert {"fgsm", "pgd", "noise"} <= set(bench.ATTACKS.names())
    assert {"digits", "synthetic"} <= set(bench.DATASETS.names())
    assert {"cnn-small", "mlp"} <= set(bench.MODELS.names())


def test_entry_point_plugin_is_loaded(tmp_path, monkeypatch):
    """A real distribution on sys.path declares a ``bench.defenses`` entry point; the registry loads it."""
    (tmp_path / "bench_demo_plugin.py").write_text(textwrap.dedent("""
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Demo:
            epochs: int = 1
    """))
    dist = tmp_path / "bench_demo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-demo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[bench.defenses]\ndemo-defense = bench_demo_plugin:Demo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("defense", group="bench.defenses")
    assert registry.names() == ["demo-defense"]  # found on first lookup, through importlib.metadata
    assert registry.get("demo-defense") is sys.modules["bench_demo_plugin"].Demo
