"""Image datasets from their original files (benchmark/vision/): MNIST and Fashion-MNIST IDX (gzipped or not),
CIFAR-10/100 binary, SVHN .mat, in torchvision's layout; checksums, the data directory, refusals. Every file here
is written byte for byte in the dataset's format, small."""

import gzip
import hashlib
import struct

import numpy as np
import pytest
import scipy.io

import benchmark.data  # noqa: F401  (registers the built-in datasets, these included)
from benchmark import DATASETS
from benchmark.errors import DataError
from benchmark.vision import checksums
from benchmark.vision.datadir import data_dir

RNG = np.random.default_rng(12)
IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def dataset(name, root, **params):
    return DATASETS.get(name)(root=str(root), **params)


# --- writers: the formats, byte for byte -----------------------------------------------------------------------------

def idx_bytes(array):
    """An IDX file: 0, 0, type 0x08 (unsigned byte), the rank, each dimension big-endian, the values."""
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx_dataset(root, folder="MNIST", gz=True, n=(20, 8)):
    """Train and test images/labels in ``root/folder/raw/``; returns {split: (images, labels)}."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for (split, (images_name, labels_name)), count in zip(IDX_NAMES.items(), n, strict=True):
        images = RNG.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = RNG.integers(0, 10, size=count, dtype=np.uint8)
        for name, array in ((images_name, images), (labels_name, labels)):
            data = idx_bytes(array)
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (raw / name).write_bytes(data)
        arrays[split] = (images, labels)
    return arrays


def write_cifar(path, labels, pixels):
    """Records of label byte(s) (``labels``: (n, k)) then 3,072 pixel bytes (R plane, G plane, B plane, row-major)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.concatenate([labels, pixels.reshape(len(pixels), -1)], axis=1).astype(np.uint8).tobytes())


def write_cifar10(root, counts=(3, 2, 2, 2, 2, 4)):
    """Five train batches and a test batch of a few records each; returns the records of each file in order."""
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    records = {}
    for name, count in zip(names, counts, strict=True):
        labels = RNG.integers(0, 10, size=(count, 1), dtype=np.uint8)
        pixels = RNG.integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)
        write_cifar(root / "cifar-10-batches-bin" / name, labels, pixels)
        records[name] = (labels, pixels)
    return records


# --- MNIST and Fashion-MNIST -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_idx_files_load_pixel_for_pixel(tmp_path, name, folder, gz):
    arrays = write_idx_dataset(tmp_path, folder, gz=gz)
    bundle = dataset(name, tmp_path, unverified=True).load()
    (train_x, train_y), (test_x, test_y) = arrays["train"], arrays["test"]
    assert bundle.x_train.shape == (20, 1, 28, 28) and bundle.x_test.shape == (8, 1, 28, 28)
    assert bundle.x_train.dtype == np.uint8 and bundle.y_train.dtype == np.int64 and bundle.nb_classes == 10
    k, i, j = 13, 4, 21  # pixel (i, j) of train image k
    assert bundle.x_train[k, 0, i, j] == train_x[k, i, j]
    np.testing.assert_array_equal(bundle.x_train[:, 0], train_x)
    np.testing.assert_array_equal(bundle.x_test[:, 0], test_x)
    np.testing.assert_array_equal(bundle.y_train, train_y)
    np.testing.assert_array_equal(bundle.y_test, test_y)
    assert bundle.name == name


def test_the_gz_file_is_read_when_both_are_there(tmp_path):
    """torchvision keeps both; only the .gz file's checksum is published, so it is the one read."""
    arrays = write_idx_dataset(tmp_path, gz=True)
    write_idx_dataset(tmp_path, gz=False)  # other random images under the uncompressed names
    bundle = dataset("mnist", tmp_path, unverified=True).load()
    np.testing.assert_array_equal(bundle.y_train, arrays["train"][1])
    assert "train-images-idx3-ubyte.gz md5:" in dataset("mnist", tmp_path, unverified=True).source()


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_a_truncated_idx_file_is_refused(tmp_path, gz):
    write_idx_dataset(tmp_path, gz=gz)
    path = tmp_path / "MNIST" / "raw" / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(DataError, match=rf"^{path}: truncated") as info:
        dataset("mnist", tmp_path, unverified=True).load()
    assert "\n" not in str(info.value)


def test_an_idx_file_of_another_type_or_shape_is_refused(tmp_path):
    write_idx_dataset(tmp_path, gz=False)
    labels = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.zeros((20, 1), np.uint8)))  # rank 2
    with pytest.raises(DataError, match=rf"^{labels}: an IDX file of type 0x08 with 2 dimension\(s\)"):
        dataset("mnist", tmp_path, unverified=True).load()
    labels.write_bytes(idx_bytes(np.full(20, 10, np.uint8)))
    with pytest.raises(DataError, match=rf"^{labels}: sample 0 has label 10, outside 0–9$"):
        dataset("mnist", tmp_path, unverified=True).load()


def test_a_checksum_mismatch_is_refused_naming_the_file_and_both_hashes(tmp_path):
    write_idx_dataset(tmp_path, gz=True)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    actual = hashlib.md5(path.read_bytes()).hexdigest()
    with pytest.raises(DataError) as info:
        dataset("mnist", tmp_path).load()
    message = str(info.value)
    assert message.startswith(f"{path}: md5 {actual}, but the published md5 is f68b3c2dcbeaaa9fbdd348bbdeb94873")
    assert "unverified=true" in message and "\n" not in message
    with pytest.raises(DataError, match="f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        dataset("mnist", tmp_path).source()  # refused before any work, too


def test_an_uncompressed_idx_file_cannot_be_verified_and_says_what_to_do(tmp_path):
    write_idx_dataset(tmp_path, gz=False)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: no checksum is published for this file.*put the "
                                        r"\.gz file \(whose MD5 is published\) beside it"):
        dataset("mnist", tmp_path).load()


def test_files_matching_the_published_checksums_load_and_their_digests_are_the_source(tmp_path, monkeypatch):
    write_idx_dataset(tmp_path, gz=True)
    raw = tmp_path / "MNIST" / "raw"
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    table = tuple(checksums.Published(f"MNIST/raw/{name}", f"md5:{digest}") for name, digest in md5.items())
    monkeypatch.setitem(checksums.FILES, "mnist", table)
    mnist = dataset("mnist", tmp_path)
    source = mnist.source()
    assert source.startswith("mnist verified: ") and "UNVERIFIED" not in source
    assert f"MNIST/raw/t10k-labels-idx1-ubyte.gz md5:{md5['t10k-labels-idx1-ubyte.gz']}" in source
    assert mnist.load().x_test.shape == (8, 1, 28, 28)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(8, np.uint8))))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: md5"):
        mnist.source()  # a changed file is hashed anew


def test_unverified_files_load_and_the_source_says_unverified(tmp_path, caplog):
    write_idx_dataset(tmp_path, gz=True)
    source = dataset("mnist", tmp_path, unverified=True).source()
    assert source.startswith("mnist UNVERIFIED: ")
    assert "train-images-idx3-ubyte.gz md5:" in source and "(published: f68b3c2dcbeaaa9fbdd348bbdeb94873)" in source
    dataset("mnist", tmp_path, unverified=True).load()
    assert "train-images-idx3-ubyte.gz: md5" in caplog.text and "reading it unverified" in caplog.text


def test_a_missing_dataset_says_in_one_line_where_to_put_the_files(tmp_path):
    with pytest.raises(DataError) as info:
        dataset("fashion-mnist", tmp_path).load()
    message = str(info.value)
    folder = tmp_path / "FashionMNIST" / "raw"
    assert message.startswith(f"fashion-mnist: {folder} lacks train-images-idx3-ubyte[.gz], ")
    assert "--data-dir" in message and "$BENCH_DATA" in message and "FashionMNIST/" in message and "\n" not in message
    write_idx_dataset(tmp_path, "FashionMNIST")
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert "; run bench data fetch fashion-mnist, or put Fashion-MNIST's files there" in message
    with pytest.raises(DataError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]; run bench data fetch fashion-mnist"):
        dataset("fashion-mnist", tmp_path, unverified=True).load()


# --- CIFAR -----------------------------------------------------------------------------------------------------------

def test_cifar10_binary_batches_load_record_for_record(tmp_path):
    records = write_cifar10(tmp_path)
    bundle = dataset("cifar10", tmp_path, unverified=True).load()
    assert bundle.x_train.shape == (11, 3, 32, 32) and bundle.x_test.shape == (4, 3, 32, 32)
    labels, pixels = records["data_batch_2.bin"]
    raw = (tmp_path / "cifar-10-batches-bin" / "data_batch_2.bin").read_bytes()
    k, c, i, j = 1, 2, 5, 30  # channel c, pixel (i, j) of the second record of batch 2 (train sample 3 + 1)
    assert bundle.x_train[3 + k, c, i, j] == raw[k * 3073 + 1 + c * 1024 + i * 32 + j]
    assert bundle.y_train[3 + k] == raw[k * 3073]
    train = [records[f"data_batch_{i}.bin"] for i in range(1, 6)]
    np.testing.assert_array_equal(bundle.x_train, np.concatenate([p for _, p in train]))
    np.testing.assert_array_equal(bundle.y_train, np.concatenate([y[:, 0] for y, _ in train]))
    np.testing.assert_array_equal(bundle.y_test, records["test_batch.bin"][0][:, 0])
    assert bundle.nb_classes == 10


def test_cifar100_takes_the_fine_label(tmp_path):
    folder = tmp_path / "cifar-100-binary"
    splits = {}
    for name, count in (("train.bin", 5), ("test.bin", 3)):
        labels = np.stack([RNG.integers(0, 20, count), RNG.integers(0, 100, count)], axis=1).astype(np.uint8)
        pixels = RNG.integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)
        write_cifar(folder / name, labels, pixels)
        splits[name] = (labels, pixels)
    bundle = dataset("cifar100", tmp_path, unverified=True).load()
    np.testing.assert_array_equal(bundle.y_train, splits["train.bin"][0][:, 1])
    np.testing.assert_array_equal(bundle.y_test, splits["test.bin"][0][:, 1])
    np.testing.assert_array_equal(bundle.x_test, splits["test.bin"][1])
    assert bundle.nb_classes == 100
    labels, pixels = splits["test.bin"]
    write_cifar(folder / "test.bin", np.array([[20, 5]] * 3, np.uint8), pixels)
    with pytest.raises(DataError, match=rf"^{folder / 'test.bin'}: sample 0 has coarse label 20, outside 0–19$"):
        dataset("cifar100", tmp_path, unverified=True).load()


def test_a_truncated_cifar_file_or_a_bad_label_is_refused(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_4.bin"
    data = path.read_bytes()
    path.write_bytes(data[:-1])
    with pytest.raises(DataError, match=rf"^{path}: truncated or not a CIFAR binary file: 6145 bytes is not a whole "
                                        r"number of 3073-byte records$"):
        dataset("cifar10", tmp_path, unverified=True).load()
    path.write_bytes(bytes([10]) + data[1:])
    with pytest.raises(DataError, match=rf"^{path}: sample 0 has label 10, outside 0–9$"):
        dataset("cifar10", tmp_path, unverified=True).load()


def test_the_cifar_binary_files_are_checked_against_their_published_sha1(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_1.bin"
    with pytest.raises(DataError, match=rf"^{path}: sha1 {hashlib.sha1(path.read_bytes()).hexdigest()}, but the "
                                        r"published sha1 is aadd24acce27caa71bf4b10992e9e7b2d74c2540 \(Apache MXNet"):
        dataset("cifar10", tmp_path).load()


@pytest.mark.parametrize(("name", "pickled", "archive"), [("cifar10", "cifar-10-batches-py", "cifar-10-binary.tar.gz"),
                                                          ("cifar100", "cifar-100-python", "cifar-100-binary.tar.gz")])
def test_the_pickle_version_of_cifar_is_refused_with_a_pointer_to_the_binary_one(tmp_path, name, pickled, archive):
    (tmp_path / pickled).mkdir()
    (tmp_path / pickled / "data_batch_1").write_bytes(b"\x80\x04not for loading")
    for root in (tmp_path, tmp_path / pickled):  # the data directory, or root= the pickle folder itself
        with pytest.raises(DataError) as info:
            dataset(name, root, unverified=True).load()
        message = str(info.value)
        assert message.startswith(f"{name}: {tmp_path / pickled} is the Python (pickle) version")
        assert f"https://www.cs.toronto.edu/~kriz/{archive}" in message and f"unpacked in {tmp_path} " in message


# --- SVHN ------------------------------------------------------------------------------------------------------------

def write_svhn(root, counts=(6, 4)):
    """``train_32x32.mat`` and ``test_32x32.mat``: X uint8 32×32×3×N, y N×1 in 1–10 (10 is the digit 0)."""
    arrays = {}
    for split, count in zip(("train", "test"), counts, strict=True):
        x = RNG.integers(0, 256, size=(32, 32, 3, count), dtype=np.uint8)
        y = np.concatenate([[10, 1], RNG.integers(1, 11, count - 2)]).astype(np.uint8).reshape(-1, 1)
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
        arrays[split] = (x, y)
    return arrays


def test_svhn_mat_files_load_with_label_10_as_digit_0(tmp_path):
    arrays = write_svhn(tmp_path)
    bundle = dataset("svhn", tmp_path, unverified=True).load()
    x, y = arrays["train"]
    assert bundle.x_train.shape == (6, 3, 32, 32) and bundle.x_test.shape == (4, 3, 32, 32)
    assert bundle.x_train.flags.c_contiguous and bundle.x_train.dtype == np.uint8
    k, c, i, j = 4, 1, 7, 19  # channel c, pixel (i, j) of train image k: X[i, j, c, k]
    assert bundle.x_train[k, c, i, j] == x[i, j, c, k]
    np.testing.assert_array_equal(bundle.x_test, arrays["test"][0].transpose(3, 2, 0, 1))
    assert bundle.y_train[0] == 0 and bundle.y_train[1] == 1
    np.testing.assert_array_equal(bundle.y_train, y[:, 0] % 10)


def test_a_truncated_or_wrong_svhn_file_is_refused(tmp_path):
    write_svhn(tmp_path)
    path = tmp_path / "test_32x32.mat"
    data = path.read_bytes()
    path.write_bytes(data[:1000])
    with pytest.raises(DataError, match=rf"^{path}: .*truncated"):
        dataset("svhn", tmp_path, unverified=True).load()
    scipy.io.savemat(path, {"X": np.zeros((28, 28, 1, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(DataError, match=r"X is uint8 of shape \(28, 28, 1, 2\); SVHN's is uint8 of shape 32×32×3×N"):
        dataset("svhn", tmp_path, unverified=True).load()
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.zeros((2, 1))})
    with pytest.raises(DataError, match=rf"^{path}: sample 0 has label 0, outside 1–10$"):
        dataset("svhn", tmp_path, unverified=True).load()


def test_svhn_is_checked_against_torchvisions_md5(tmp_path):
    write_svhn(tmp_path)
    with pytest.raises(DataError, match=r"train_32x32\.mat: md5 [0-9a-f]{32}, but the published md5 is "
                                        r"e26dedcc434d2e4c54c9b2d4a06d8373"):
        dataset("svhn", tmp_path).source()


# --- the data directory, the registry, the checksum table ------------------------------------------------------------

def test_the_data_directory_is_the_option_else_bench_data_else_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BENCH_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert data_dir() == tmp_path / "home" / ".cache" / "defense-bench" / "data"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG rule says
    assert data_dir() == tmp_path / "home" / ".cache" / "defense-bench" / "data"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "defense-bench" / "data"
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(str(tmp_path / "given")) == tmp_path / "given"
    assert data_dir("~/d") == tmp_path / "home" / "d"


def test_an_empty_root_reads_the_data_directory_and_a_spec_can_set_the_parameters(tmp_path, monkeypatch):
    from benchmark.inputs import parse_dataset

    write_svhn(tmp_path)
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    assert dataset("svhn", "", unverified=True).load().x_test.shape == (4, 3, 32, 32)
    built = parse_dataset(f"svhn:root={tmp_path},unverified=true", "--dataset").build()
    assert built.unverified is True and built.root == str(tmp_path)
    with pytest.raises(Exception, match="unverified must be true or false"):
        parse_dataset("svhn:unverified=maybe", "--dataset").build()


def test_the_threat_models_are_the_literatures():
    from benchmark.data import headline_eps

    assert headline_eps("cifar10", "inf", DATASETS.get("cifar10").default_eps["inf"]) == 8 / 255
    assert headline_eps("cifar100", "2", DATASETS.get("cifar100").default_eps["2"]) == 0.5
    assert headline_eps("mnist", "inf", DATASETS.get("mnist").default_eps["inf"]) == 0.3
    assert headline_eps("mnist", "2", DATASETS.get("mnist").default_eps["2"]) == 2.0
    assert headline_eps("fashion-mnist", "inf", DATASETS.get("fashion-mnist").default_eps["inf"]) == 0.1
    assert DATASETS.get("svhn").default_eps == DATASETS.get("cifar10").default_eps


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "cifar100", "svhn"])
def test_the_checksum_table_covers_what_each_dataset_reads(name):
    lengths = {"md5": 32, "sha1": 40}
    entries = checksums.FILES[name]
    for entry in entries:
        assert len(entry.hexdigest) == lengths[entry.algorithm] and int(entry.hexdigest, 16) >= 0, entry
        assert bool(entry.url) != bool(entry.archive), entry  # downloaded, or unpacked from a download
        assert not entry.archive or entry.archive in {e.path for e in checksums.downloads(name)}, entry
        assert entry.by, entry
    plugin = DATASETS.get(name)()
    for relpath in (rel for rels in plugin.files.values() for rel in rels):
        assert checksums.published(name, plugin.candidates(relpath)[0]) is not None, relpath
