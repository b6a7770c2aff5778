"""What a leaderboard keeps of its run's configuration: enough to re-run the evaluation of its records (what
``bench check`` reads back from a baseline), in the keys ``benchmark.config.build_config`` takes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmark.record import Record


def unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` without repeats, in order (plugin tables: name plus every parameter, as config files write them)."""
    kept: list[dict[str, Any]] = []
    for item in items:
        if item not in kept:
            kept.append(item)
    return kept


def board_config(records: Sequence[Record]) -> dict[str, Any]:
    """Enough to re-run the evaluation of ``records`` (what ``bench check`` reads back from a baseline)."""
    first = records[0]
    return {
        "dataset": first.dataset,
        "model": sorted({r.model for r in records}),
        "defenses": unique([{"name": r.defense_name, **r.defense_params} for r in records]),
        "attacks": [{"name": name.split("(")[0], **params} for name, params in first.attacks.items()],
        "eps": list(first.eps),
        "norm": first.norm,
        "seeds": sorted({r.seed for r in records}),
        "quick": first.quick,
        "n_test": first.n_test,
        "survivors": first.survivors,
        **model_options(records),
        **privacy_options(records),
        **({"ibp": True} if first.ibp is not None else {}),  # the run certified by IBP: so does the re-run
    }


def model_options(records: Sequence[Record]) -> dict[str, Any]:
    """The config keys that rebuild the records' model from its file or class (``--weights``, ``--model-arg``,
    ``--normalize``, ``--trust``) and the row label given with ``--name``; none for a registry architecture."""
    first, options = records[0], {}
    source = first.model_source
    if source is not None:
        options = {"weights": source.weights, "model_args": source.args, "trust": list(source.trust),
                   "normalize": source.normalize}
        options = {key: value for key, value in options.items() if value not in (None, {}, [])}
    aliases = {r.defense for r in records
               if r.defense != r.defense_name and not r.defense.startswith(f"{r.defense_name}(")}
    if len(aliases) == 1:
        options["name"] = aliases.pop()
    return options


def privacy_options(records: Sequence[Record]) -> dict[str, Any]:
    """The config keys of the records' privacy attacks (``--privacy`` with every parameter, ``--mia-samples``) and of
    ``--n-train``; none when the run had neither."""
    first, options = records[0], {}
    if first.n_train is not None:
        options["n_train"] = first.n_train
    if first.privacy is not None and first.privacy.attacks:
        options["privacy"] = [{"name": label.split("(")[0], **params}
                              for label, params in first.privacy.attacks.items()]
        if first.privacy.mia_samples is not None:
            options["mia_samples"] = first.privacy.mia_samples
    return options
