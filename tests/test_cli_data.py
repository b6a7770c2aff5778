"""``bench data fetch`` and ``bench data list`` against format-exact files served from 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.vision import checksums
from benchmark.vision.checksums import Published
from tests.test_fetch import server  # noqa: F401  (the 127.0.0.1 server fixture)


def idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


@pytest.fixture
def mnist_files(server, monkeypatch):  # noqa: F811
    """Four small MNIST files on the server, with the table's checksums made theirs (what 'published' means)."""
    rng = np.random.default_rng(0)
    files = {"train-images-idx3-ubyte.gz": idx(rng.integers(0, 256, (12, 28, 28))),
             "train-labels-idx1-ubyte.gz": idx(rng.integers(0, 10, 12)),
             "t10k-images-idx3-ubyte.gz": idx(rng.integers(0, 256, (6, 28, 28))),
             "t10k-labels-idx1-ubyte.gz": idx(rng.integers(0, 10, 6))}
    for name, body in files.items():
        server.files[f"/{name}"] = body
    table = tuple(Published(f"MNIST/raw/{name}", f"md5:{hashlib.md5(body).hexdigest()}",
                            f"https://example.invalid/mnist/{name}", by="test") for name, body in files.items())
    monkeypatch.setitem(checksums.FILES, "mnist", table)
    return f"http://127.0.0.1:{server.server_port}", files


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_fetch_downloads_verifies_and_the_dataset_loads(mnist_files, tmp_path):
    mirror, files = mnist_files
    result = run("data", "fetch", "mnist", "--data-dir", str(tmp_path), "--mirror", mirror)
    assert result.exit_code == 0, result.output
    assert "mnist: verified" in result.output
    assert all((tmp_path / "MNIST/raw" / name).read_bytes() == body for name, body in files.items())
    listing = run("data", "list", "--data-dir", str(tmp_path)).output
    assert "mnist          verified" in listing and "cifar10        missing 7 of 7 files" not in listing
    from benchmark.vision.idx import MNIST

    bundle = MNIST(root=str(tmp_path)).load()
    assert bundle.x_train.shape == (12, 1, 28, 28) and len(bundle.y_test) == 6


def test_a_file_that_does_not_match_its_published_checksum_is_refused(mnist_files, tmp_path, monkeypatch):
    mirror, files = mnist_files
    bad = tuple(Published(e.path, "md5:" + "0" * 32, e.url, by="test") for e in checksums.FILES["mnist"])
    monkeypatch.setitem(checksums.FILES, "mnist", bad)
    result = CliRunner().invoke(main, ["data", "fetch", "mnist", "--data-dir", str(tmp_path), "--mirror", mirror])
    assert result.exit_code == 2 and "checksum mismatch" in result.output
    assert not list((tmp_path / "MNIST/raw").glob("*.gz"))


def test_an_unknown_name_is_one_line_with_a_suggestion(tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmark", "data", "fetch", "mnst", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "unknown dataset 'mnst'; did you mean 'mnist'?" in result.stderr


def test_list_says_what_is_missing_and_how_to_fetch_it(tmp_path):
    listing = run("data", "list", "--data-dir", str(tmp_path)).output
    assert f"data directory: {tmp_path}" in listing
    assert "svhn           missing 2 of 2 files (bench data fetch svhn)" in listing


def test_unverified_data_is_an_option_of_datasets_with_checksums_and_names_the_rows(mnist_files, tmp_path):
    from benchmark.config import build_config

    refused = subprocess.run([sys.executable, "-m", "benchmark", "evaluate", "--unverified-data", "--dry-run",
                              "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr == "bench: error: --unverified-data: dataset 'digits' has no published checksums to skip\n"
    config = build_config(None, {"dataset": "mnist", "unverified_data": True, "out": str(tmp_path / "out")})
    assert config.dataset == "mnist:unverified=True"  # every row's dataset says it
