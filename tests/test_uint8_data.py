"""Images may stay uint8 in a ``DataBundle`` (0–255 meaning value/255) and become float32 per batch: training, the
sweep and the records are those of the float32 bundle of the same images; only the fingerprint tells them apart."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import benchmark
import benchmark as bench
from benchmark.api import DataBundle, RunContext
from benchmark.cli import main
from benchmark.errors import DataError
from benchmark.recipes import Recipe
from benchmark.store import Store

#: ``load_dataset("digits").fingerprint()`` on main at ed65e01, before bundles could hold uint8.
MAIN_DIGITS_FINGERPRINT = "b7291dfff74c9fc4"


@pytest.fixture(scope="module")
def pair(synthetic):
    """(uint8 bundle, float32 bundle) of the same images: the synthetic task rounded to 8-bit pixels."""
    x_train, x_test = (np.round(x * 255).astype(np.uint8) for x in (synthetic.x_train, synthetic.x_test))
    as_bytes = DataBundle("bytes", x_train, synthetic.y_train, x_test, synthetic.y_test, synthetic.nb_classes)
    floats = DataBundle("bytes", x_train.astype(np.float32) / 255, synthetic.y_train, x_test.astype(np.float32) / 255,
                        synthetic.y_test, synthetic.nb_classes)
    return as_bytes, floats


def test_batch_and_float_test_convert_only_what_is_asked(pair):
    as_bytes, floats = pair
    assert as_bytes.x_train.dtype == np.uint8 and as_bytes.input_shape == floats.input_shape
    index = np.array([5, 0, 17])
    for split, selector in (("train", index), ("test", slice(3, 9))):
        batch = as_bytes.batch(split, selector)
        assert batch.dtype == np.float32 and batch.shape == getattr(floats, f"x_{split}")[selector].shape
        np.testing.assert_array_equal(batch, getattr(floats, f"x_{split}")[selector])
    np.testing.assert_array_equal(as_bytes.float_test(), floats.x_test)
    assert floats.float_test() is floats.x_test  # float32 data is not copied
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        as_bytes.batch("val", index)


def test_check_split_takes_uint8_of_any_value_and_still_refuses_other_integers(synthetic):
    full = np.full((4, 1, 6, 6), 255, np.uint8)
    assert DataBundle("x", full[:0], synthetic.y_train[:0], full, synthetic.y_test[:4], 4).float_test().max() == 1.0
    with pytest.raises(DataError, match=r"^x_test must be a float32 array .*got int16 .*uint8 pixels 0–255 are"):
        DataBundle("x", full[:0], synthetic.y_train[:0], full.astype(np.int16), synthetic.y_test[:4], 4)


def test_fingerprints_differ_by_dtype_and_digits_keeps_its_fingerprint(pair):
    as_bytes, floats = pair
    assert as_bytes.fingerprint() != floats.fingerprint()
    assert as_bytes.fingerprint() == DataBundle("other", *(copy.copy(a) for a in (
        as_bytes.x_train, as_bytes.y_train, as_bytes.x_test, as_bytes.y_test)), 4).fingerprint()
    from benchmark.plan import load_dataset

    assert load_dataset("digits").fingerprint() == MAIN_DIGITS_FINGERPRINT


def trained(data, defense, recipe=None):
    torch.manual_seed(3)
    model = bench.MODELS.get("mlp")(data.input_shape, data.nb_classes)
    ctx = RunContext(seed=3, quick=True, recipe=recipe)
    return defense.fit(model, data, ctx), ctx


@pytest.mark.parametrize(("defense", "recipe"), [
    ("standard:epochs=8", None),  # one epoch under --quick
    ("standard:epochs=16", Recipe(optimiser="sgd", lr=0.05, augmentation="crop-flip", crop_padding=1,
                                  early_stop="robust-val", val_fraction=0.25, val_steps=2)),
    ("pgd-at:epochs=8,steps=2", None),
    ("fedavg:clients=3,rounds=8", None),
], ids=["standard", "standard-sgd-cropflip-earlystop", "pgd-at", "fedavg"])
def test_uint8_bundle_trains_the_float_bundles_weights(pair, defense, recipe):
    name, _, params = defense.partition(":")
    fields = {key: int(value) for key, value in (item.split("=") for item in params.split(","))}
    as_bytes, floats = pair
    byte_model, byte_ctx = trained(as_bytes, bench.DEFENSES.get(name)(**fields), recipe)
    float_model, float_ctx = trained(floats, bench.DEFENSES.get(name)(**fields), recipe)
    for a, b in zip(byte_model.state_dict().values(), float_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert byte_ctx.costs == float_ctx.costs and byte_ctx.outcome == float_ctx.outcome


def per_sample(record) -> tuple:
    return record.correct, {label: run.broken_at for label, run in record.runs.items()}


def test_benchmark_evaluate_on_uint8_gives_the_float_records_results(pair, trained_mlp):
    as_bytes, floats = pair
    runs = [benchmark.evaluate(copy.deepcopy(trained_mlp), data.x_test, data.y_test, attacks="fgsm,pgd",
                               eps=[0.05, 0.1]).record for data in (as_bytes, floats)]
    assert per_sample(runs[0]) == per_sample(runs[1]) and runs[0].runs["pgd"].broken_at
    # benchmark.evaluate converts the arrays it is handed to float32 first (k/255 exactly): both runs saw the same data
    assert runs[0].data_fingerprint == runs[1].data_fingerprint and runs[0].data_source == runs[1].data_source


def test_bench_evaluate_on_a_uint8_npz_gives_the_float_npz_results(pair, tmp_path):
    records = []
    for data in pair:
        path, out = tmp_path / f"{data.x_test.dtype}.npz", tmp_path / f"out-{data.x_test.dtype}"
        np.savez(path, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
        result = CliRunner().invoke(main, ["evaluate", "--dataset", f"npz:{path}", "--model", "mlp", "--device",
                                           "cpu", "--defense", "standard:epochs=8", "--attack", "fgsm,pgd", "--quick",
                                           "--out", str(out)])
        assert result.exit_code == 0, result.output
        with Store(out, create=False) as store:
            (record,) = store.records()
        records.append(record)
    assert per_sample(records[0]) == per_sample(records[1]) and len(records[0].correct) == len(pair[0].x_test)
    assert records[0].data_fingerprint != records[1].data_fingerprint
