"""The ``bench`` command line: the group, ``list`` and ``evaluate``; the report commands (``leaderboard``,
``compare``, ``check``) live in ``benchmark.cli_reports`` and are added here. Only the CLI modules print (through
``benchmark.console``); everything else logs.

Imports of torch and ART happen inside the commands that need them, so ``bench --help`` and ``bench list`` stay
fast. Every error is one line on stderr with exit code 2; results already stored are never touched by an error.
"""

from __future__ import annotations

import os
from typing import Any

import click

from benchmark import cli_data, cli_matrix, cli_reports
from benchmark.console import OneLineErrors, dry_run_option, print_board, run_or_plan, setup_logging, time_limit_option

KINDS = ("defenses", "attacks", "privacy", "client-attacks", "datasets", "models")


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="defense-bench", prog_name="bench")
@click.option("-v", "--verbose", is_flag=True, help="Log details, and show the traceback of internal errors.")
def main(verbose: bool) -> None:
    """How robust is this defense, really, and at what cost?

    Trains defenses under one budget, scores them with ART attacks over ε sweeps and prints leaderboards.
    Start with `bench evaluate` (digits, standard vs PGD-AT, about a minute on two cores).
    """
    setup_logging(verbose)


@main.command("list")
@click.argument("kind", required=False, type=click.Choice(KINDS))
def list_command(kind: str | None) -> None:
    """List registered defenses, attacks, privacy attacks, client attacks, datasets and models, with their
    parameters."""
    import benchmark

    registries = {"defenses": benchmark.DEFENSES, "attacks": benchmark.ATTACKS, "privacy": benchmark.PRIVACY,
                  "client-attacks": benchmark.CLIENT_ATTACKS, "datasets": benchmark.DATASETS,
                  "models": benchmark.MODELS}
    for name in [kind] if kind else KINDS:
        registry = registries[name]
        click.secho(f"{name}:", bold=True)
        for entry in registry.names():
            plugin = registry.get(entry)
            summary = " ".join((plugin.__doc__ or "").strip().split("\n\n")[0].split())
            click.echo(f"  {entry:<14} {summary}")
            params = describe_params(plugin)
            if params:
                click.echo(f"  {'':<14} {params}")


def describe_params(plugin: Any) -> str:
    """``key=default [range]`` for each constructor field, plus the attack tags (a privacy attack's ``kind``)."""
    from benchmark.constraints import describe_fields

    parts = describe_fields(plugin)
    if hasattr(plugin, "kind"):
        tags = [f"kind={plugin.kind}"] + [t for t in ("labels_only", "needs_grad", "omniscient")
                                          if getattr(plugin, t, False)]
        parts.append("[" + " ".join(tags) + "]")
    elif hasattr(plugin, "needs_grad"):
        tags = ["norms=" + ",".join(f"L{n}" for n in plugin.norms)]
        tags += [t for t in ("needs_grad", "black_box", "minimal_norm", "torch_only", "images_only")
                 if getattr(plugin, t, False)]
        parts.append("[" + " ".join(tags) + "]")
    return " ".join(parts)


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML file; options override it.")
@click.option("--dataset", help="Dataset name, or your data: npz:PATH (x_test, y_test; x_train, y_train to train), "
                               "folder:PATH[,size=N] (one sub-folder per class) (default: digits).")
@click.option("--model", help="Registry architecture, NAME:key=value sets its parameters (default: cnn-small), or "
                             "your model: torchscript:PATH, "
                             "export:PATH, keras:PATH, onnx:PATH, sklearn:PATH, or pkg.mod:Class (trained here, or "
                             "with --weights).")
@click.option("--weights", help="State dict for --model pkg.mod:Class (loaded with weights_only=True).")
@click.option("--model-arg", "model_args", multiple=True, help="key=value for pkg.mod:Class's constructor "
                                                                "(repeatable).")
@click.option("--normalize", help="mean=…,std=… per channel: the model expects standardised inputs.")
@click.option("--trust", help="Comma list of types to trust in a skops file (sklearn:PATH).")
@click.option("--name", help="Row label for the model (default: the defense, 'pretrained' for a model file).")
@click.option("--defense", "defenses", help="Comma list; name:key=value,key=value sets parameters "
                                            "(default: standard,pgd-at).")
@click.option("--recipe", help="Training recipe fields, key=value,… (optimiser, lr, schedule, epochs, batch_size, "
                               "augmentation, early_stop, amp, …) over the dataset's paper recipe; a defense's own "
                               "parameters override them.")
@click.option("--attack", "attacks", help="Comma list of attacks and suites (suite:quick, suite:standard, "
                                          "suite:full; default: suite:default).")
@click.option("--norm", help="Threat model: inf or 2 (default: inf).")
@click.option("--eps", help="Comma list of ε in input units (default: the dataset's grid for the norm).")
@click.option("--seed", "seeds", help="Seed, or a comma list of seeds (default: 0).")
@click.option("--seeds", "n_seeds", type=int, help="Run seeds 0 … N-1 (instead of --seed).")
@click.option("--device", help="auto (cuda when an NVIDIA driver and CUDA are present), cpu or cuda (default: auto).")
@click.option("--out", help="Output directory: results store, checkpoints, leaderboards (default: ./bench-results).")
@click.option("--quick", is_flag=True, default=None, help="Smoke run: 1/8 of the epochs and 100 test samples.")
@click.option("--n-test", "n_test", help="Evaluate on the first N test samples only.")
@click.option("--n-train", "n_train", help="Train on the first N training samples only; the rest are a holdout of "
                                           "non-members for membership inference.")
@click.option("--privacy", help="Comma list of privacy attacks run on each trained model: mia-rule, mia-blackbox, "
                                "mia-label (membership inference), gradient-inversion (federated defenses).")
@click.option("--mia-samples", "mia_samples", help="Members and non-members per side of the membership split "
                                                   "(default: up to 500).")
@click.option("--ibp", is_flag=True, default=None,
              help="Also certify each model by interval bound propagation (L∞): IBP-verified accuracy per ε beside "
                   "the empirical one, for nn.Sequential models of Linear/Conv2d/ReLU/Flatten/MaxPool2d/BatchNorm.")
@click.option("--eot-draws", "eot_draws", help="Gradients averaged per step of the EoT runs on a randomized model "
                                               "(default: 20, AutoAttack's rand version).")
@click.option("--survivors", help="shared: at each ε an attack gets only the samples no attack has broken yet "
                                   "(fastest; per-attack numbers are cumulative); per-attack: each attack on the "
                                   "samples it left robust itself (standalone per-attack numbers) (default: shared).")
@click.option("--fresh", is_flag=True, help="Ignore stored results and checkpoints; recompute everything.")
@click.option("--executor", type=click.Choice(("auto", "inline", "process", "ray")), default="auto",
              show_default=True, help="auto: a process pool when at least two jobs per worker are pending, "
                                      "else inline.")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: one per core).")
@click.option("--data-dir", help="Where mnist, cifar10, … are (default: $BENCH_DATA, else "
                                "~/.cache/defense-bench/data; bench data fetch NAME puts them there).")
@click.option("--unverified-data", "unverified_data", is_flag=True, default=None,
              help="Use dataset files that fail their published checksums; every row is flagged unverified_data.")
@click.option("--shards", help="Split each job's test samples into N pieces run as separate tasks (workers, Ray "
                               "nodes), merged into one result identical to the unsharded run (default: 1).")
@click.option("--address", help="Ray cluster address (with --executor ray; default: a local cluster).")
@time_limit_option
@dry_run_option
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
def evaluate(config_file: str | None, fresh: bool, executor: str, workers: int | None, address: str | None,
             time_limit_s: float | None, dry_run: bool, verbose: bool, **options: Any) -> None:
    """Train each defense, attack it over the ε sweep, and print the leaderboard."""
    setup_logging(verbose)
    config, board = run_or_plan(lambda create_out: evaluation_config(config_file, options, create_out=create_out),
                                dry_run=dry_run, time_limit_s=time_limit_s, fresh=fresh, executor=executor,
                                workers=workers, address=address)
    if board is None:
        return
    print_board(board)
    if config.quick:
        click.echo("Quick run: fewer epochs and test samples; not for comparison with full runs.")
    files = cli_reports.write_leaderboards(config.out, board)
    click.echo(f"Wrote {' and '.join(map(str, files))}; results and checkpoints in {config.out}")


def evaluation_config(config_file: str | None, options: dict[str, Any], *, create_out: bool = True):
    """The ``EvalConfig`` of ``bench evaluate``: the TOML file, overridden by the options given (``create_out``:
    see ``build_config``)."""
    from benchmark.config import SEED_COUNT, build_config, load_toml, parse_value

    data_dir = options.pop("data_dir", None)
    if data_dir is not None:  # through the environment, so worker processes and Ray tasks read it too
        from benchmark.vision.datadir import ENV_VAR

        os.environ[ENV_VAR] = data_dir
    n_seeds = options.pop("n_seeds")
    if n_seeds is not None:
        if options["seeds"] is not None:
            raise click.UsageError("give --seed or --seeds, not both")
        n_seeds = parse_value(n_seeds, "--seeds", SEED_COUNT)
        options["seeds"] = ",".join(str(seed) for seed in range(n_seeds))
    overrides = {key: value for key, value in options.items() if value not in (None, ())}
    file_values = load_toml(config_file) if config_file else None
    return build_config(file_values, overrides, file_label=str(config_file), create_out=create_out)


for command in cli_reports.COMMANDS:
    main.add_command(command)
main.add_command(cli_data.data)
main.add_command(cli_matrix.matrix)
