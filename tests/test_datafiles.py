"""The user's data files as datasets: ``npz:PATH`` and ``folder:PATH`` (benchmark/datafiles.py), and the
``DataBundle`` they yield (an empty train split, feature vectors)."""

import hashlib

import numpy as np
import pytest
from PIL import Image

import benchmark.datafiles  # noqa: F401  (registers "npz" and "folder")
from benchmark import DATASETS
from benchmark.api import DataBundle
from benchmark.errors import DataError

RNG = np.random.default_rng(0)
X_NHWC = RNG.integers(0, 256, size=(12, 8, 8, 1), dtype=np.uint8)  # digits-like, channels last
Y = np.arange(12) % 4


def npz(path="data.npz", **fields):
    return DATASETS.get("npz")(path=str(path), **fields)


def folder(path="images", **fields):
    return DATASETS.get("folder")(path=str(path), **fields)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # messages name the file as given: "data.npz: ..."


# --- DataBundle ------------------------------------------------------------------------------------------------------

def test_a_bundle_may_have_no_train_split_and_flat_features():
    x = RNG.uniform(size=(5, 7)).astype(np.float32)
    bundle = DataBundle("tabular", np.zeros((0, 7), np.float32), np.zeros(0, np.int64), x, np.arange(5) % 2, 2)
    assert not bundle.has_train and bundle.input_shape == (7,)
    assert bundle.subset_test(3).x_test.shape == (3, 7) and len(bundle.fingerprint()) == 16
    with pytest.raises(DataError, match=r"^x_train holds samples of shape \(6,\) but x_test of shape \(7,\)$"):
        DataBundle("tabular", np.zeros((0, 6), np.float32), np.zeros(0, np.int64), x, np.arange(5) % 2, 2)


# --- npz -------------------------------------------------------------------------------------------------------------

def test_uint8_nhwc_arrays_become_nchw_uint8():
    np.savez("data.npz", x_train=X_NHWC, y_train=Y, x_test=X_NHWC[:4], y_test=Y[:4].astype(np.uint8))
    bundle = npz().load()
    expected = X_NHWC.transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(bundle.x_train, expected)
    np.testing.assert_array_equal(bundle.x_test, expected[:4])
    np.testing.assert_array_equal(bundle.float_test(), expected[:4].astype(np.float32) / 255)
    assert bundle.x_test.dtype == np.uint8 and bundle.y_test.dtype == np.int64
    assert bundle.has_train and bundle.nb_classes == 4 and bundle.input_shape == (1, 8, 8)
    assert bundle.x_test.flags.c_contiguous


@pytest.mark.parametrize(("x", "layout", "shape"), [
    (RNG.uniform(size=(4, 3, 6, 6)), "auto", (3, 6, 6)),  # float64 NCHW
    (RNG.uniform(size=(4, 5, 5)), "auto", (1, 5, 5)),  # grayscale without a channel axis
    (RNG.uniform(size=(4, 7)), "auto", (7,)),  # tabular features
    (RNG.uniform(size=(4, 3, 5, 3)), "nchw", (3, 5, 3)),
    (RNG.uniform(size=(4, 3, 5, 3)), "nhwc", (3, 3, 5)),
    (RNG.uniform(size=(4, 3, 5, 3)), "flat", (45,)),
])
def test_layouts(x, layout, shape):
    np.savez("data.npz", x_test=x, y_test=np.array([0, 1, 2, 1]))
    bundle = npz(layout=layout).load()
    assert bundle.input_shape == shape and bundle.x_test.dtype == np.float32
    assert bundle.x_train.shape == (0, *shape) and not bundle.has_train
    sample = x[1].transpose(2, 0, 1) if layout == "nhwc" else x[1]
    np.testing.assert_array_equal(bundle.x_test[1].ravel(), sample.astype(np.float32).ravel())


def test_classes_zero_counts_labels_over_both_splits_and_a_given_count_is_kept():
    x = RNG.uniform(size=(3, 7))
    np.savez("data.npz", x_train=x, y_train=np.array([0, 5, 1]), x_test=x, y_test=np.array([0, 1, 2]))
    assert npz().load().nb_classes == 6
    assert npz(classes=9).load().nb_classes == 9


BAD_NPZ = {  # case: (arrays saved to data.npz, npz fields, the message expected)
    "NaN": (dict(x_test=np.where(np.eye(3)[None] > 0, np.nan, 0.5).repeat(2, 0), y_test=[0, 1]), {},
            r"^data\.npz: x_test must hold finite values in \[0, 1\], got NaN$"),
    "inf": (dict(x_test=np.full((2, 3, 3), np.inf), y_test=[0, 1]), {},
            r"^data\.npz: x_test .*got values in \[inf, inf\]"),
    "above 1": (dict(x_test=np.full((2, 3, 3), 255.0), y_test=[0, 1]), {}, r"^data\.npz: x_test .*in \[255, 255\]$"),
    "below 0": (dict(x_train=np.full((2, 4), -0.5), y_train=[0, 1], x_test=np.zeros((2, 4)), y_test=[0, 1]), {},
                r"^data\.npz: x_train must hold finite values in \[0, 1\], got values in \[-0.5, -0.5\]$"),
    "int64 x": (dict(x_test=np.ones((2, 3, 3), np.int64), y_test=[0, 1]), {},
                r"^data\.npz: x_test is int64; give uint8 \(0–255\) or floats in \[0, 1\]$"),
    "object x": (dict(x_test=np.array([[None, 1]] * 2, dtype=object), y_test=[0, 1]), {},
                 r"^data\.npz: x_test is an object array; pickled arrays are refused$"),
    "no y_test": (dict(x_test=np.zeros((2, 4)), labels=[0, 1]), {},
                  r"^data\.npz: no 'y_test' \(found: x_test, labels\)$"),
    "x_train alone": (dict(x_train=np.zeros((2, 4)), x_test=np.zeros((2, 4)), y_test=[0, 1]), {},
                      r"^data\.npz: x_train given without y_train$"),
    "y_train alone": (dict(y_train=[0, 1], x_test=np.zeros((2, 4)), y_test=[0, 1]), {},
                      r"^data\.npz: y_train given without x_train$"),
    "lengths": (dict(x_test=np.zeros((100, 4)), y_test=np.arange(99) % 2), {},
                r"^data\.npz: x_test has 100 samples but y_test has 99$"),
    "label too large": (dict(x_test=np.zeros((2, 4)), y_test=[3, 12]), {"classes": 10},
                        r"^data\.npz: y_test holds label 12, but classes is 10 \(labels 0 … 9\)$"),
    "negative label": (dict(x_test=np.zeros((2, 4)), y_test=[-1, 1]), {},
                       r"^data\.npz: y_test must hold .* ≥ 0, got -1$"),
    "one-hot labels": (dict(x_test=np.zeros((2, 4)), y_test=np.eye(2, dtype=int)), {},
                       r"^data\.npz: y_test must be a 1-D integer array .*one-hot\? pass y\.argmax\(1\)\)$"),
    "float labels": (dict(x_test=np.zeros((2, 4)), y_test=[0.0, 1.0]), {}, r"^data\.npz: y_test must be a 1-D integer"),
    "one class": (dict(x_test=np.zeros((2, 4)), y_test=[0, 0]), {}, r"^data\.npz: the labels hold 1 class\(es\)"),
    "ambiguous": (dict(x_test=np.zeros((2, 3, 5, 3)), y_test=[0, 1]), {},
                  r"^data\.npz: cannot tell whether x_test of shape \(2, 3, 5, 3\) is NCHW or NHWC; give layout="),
    "layout for features": (dict(x_test=np.zeros((2, 4)), y_test=[0, 1]), {"layout": "nhwc"},
                            r"^data\.npz: layout=nhwc needs images, but x_test has shape \(2, 4\)"),
    "5-D x": (dict(x_test=np.zeros((2, 1, 1, 3, 3)), y_test=[0, 1]), {},
              r"^data\.npz: x_test must have shape \(n, d\)"),
    "1-D x": (dict(x_test=np.zeros(2), y_test=[0, 1]), {}, r"^data\.npz: x_test must have shape \(n, d\)"),
    "train shape": (dict(x_train=np.zeros((2, 5)), y_train=[0, 1], x_test=np.zeros((2, 4)), y_test=[0, 1]), {},
                    r"^data\.npz: x_train holds samples of shape \(5,\) but x_test of shape \(4,\)$"),
}


@pytest.mark.parametrize("case", BAD_NPZ)
def test_bad_npz_files_are_refused_in_one_line_naming_the_key(case):
    arrays, fields, message = BAD_NPZ[case]
    np.savez("data.npz", **arrays)
    with pytest.raises(DataError, match=message) as refused:
        npz(**fields).load()
    assert "\n" not in str(refused.value)


def test_files_that_are_not_npz_archives_are_refused(tmp_path):
    (tmp_path / "text.npz").write_text("x_test,y_test\n")
    np.save("single.npy", np.zeros((2, 4)))
    (tmp_path / "a_dir").mkdir()
    cases = {"text.npz": r"^text\.npz: not an npz file", "single.npy": r"^single\.npy: a single array, not an npz",
             "missing.npz": r"^missing\.npz: no such file$", "a_dir": r"^a_dir: cannot read it"}
    for path, message in cases.items():
        with pytest.raises(DataError, match=message):
            npz(path).load()
    with pytest.raises(DataError, match=r"^missing\.npz: no such file$"):
        npz("missing.npz").source()


def test_parameters_are_checked():
    with pytest.raises(ValueError, match=r"^path is required \(npz:PATH\)$"):
        npz("")
    with pytest.raises(ValueError, match="layout must be one of auto, nchw, nhwc, flat, got 'NHWC'"):
        npz(layout="NHWC")
    with pytest.raises(ValueError, match="size must be an int in"):
        folder(size=-1)


def test_npz_source_is_the_files_sha256_and_fingerprints_follow_the_data(tmp_path):
    np.savez("data.npz", x_test=X_NHWC, y_test=Y)
    np.savez("other.npz", x_test=X_NHWC[::-1], y_test=Y)
    first, again, other = npz().load(), npz().load(), npz("other.npz").load()
    assert first.fingerprint() == again.fingerprint() != other.fingerprint()
    digest = hashlib.sha256((tmp_path / "data.npz").read_bytes()).hexdigest()
    assert npz().source() == f"sha256:{digest}" != npz("other.npz").source()
    np.savez("data.npz", x_test=X_NHWC[::-1], y_test=Y)  # rewritten in place: the source changes with it
    assert npz().source() == npz("other.npz").source()


# --- folder ----------------------------------------------------------------------------------------------------------

def save_image(path, pixels, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8), mode=mode).save(path)


def gray(value, size=(6, 6)):
    return np.full(size, value) + np.arange(size[1])  # distinct, exactly representable pixels


def test_a_folder_of_grayscale_pngs_is_one_channel_test_data(tmp_path):
    for name, value in (("cat", 10), ("ant", 50), ("bee", 90)):
        save_image(tmp_path / "images" / name / "2.png", gray(value + 1))
        save_image(tmp_path / "images" / name / "1.png", gray(value))
    (tmp_path / "images" / "README.txt").write_text("top-level files are not data")
    bundle = folder().load()
    assert bundle.input_shape == (1, 6, 6) and not bundle.has_train and bundle.nb_classes == 3
    np.testing.assert_array_equal(bundle.y_test, [0, 0, 1, 1, 2, 2])  # ant, bee, cat: sorted names
    np.testing.assert_array_equal(bundle.x_test[:, 0, 0, 0], [50, 51, 90, 91, 10, 11])
    np.testing.assert_array_equal(bundle.x_test[2, 0], gray(90))


def test_train_and_test_folders_with_rgb_and_jpeg_and_resizing(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for label, name in enumerate(("no", "yes")):
            for i in range(n):
                save_image(tmp_path / "images" / split / name / f"{i}.jpg", np.full((9, 7, 3), 40 * label + i), "RGB")
    save_image(tmp_path / "images" / "test" / "yes" / "gray.png", gray(200, (5, 5)))  # grayscale among RGB
    with pytest.raises(DataError, match=r"^images: images differ in size \(train/no/0\.jpg is 7×9, test/yes/gray\.png "
                                        r"is 5×5\); give size=N"):
        folder().load()
    bundle = folder(size=4).load()
    assert bundle.has_train and bundle.x_train.shape == (6, 3, 4, 4) and bundle.x_test.shape == (5, 3, 4, 4)
    np.testing.assert_array_equal(bundle.y_train, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(bundle.y_test, [0, 0, 1, 1, 1])
    gray_rgb = bundle.x_test[-1]
    assert np.all(gray_rgb[0] == gray_rgb[1]) and np.all(gray_rgb[1] == gray_rgb[2])


def test_bad_folders_are_refused_naming_the_file(tmp_path):
    root = tmp_path / "images"
    with pytest.raises(DataError, match=r"^images: no such folder$"):
        folder().load()
    save_image(root / "a" / "0.png", gray(0))
    with pytest.raises(DataError, match=r"^images: one class sub-folder \(a\); at least 2 are needed$"):
        folder().load()
    (root / "b").mkdir()
    with pytest.raises(DataError, match=r"^images: class folder b/ holds no images$"):
        folder().load()
    (root / "b" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match=r"^images: b/notes\.txt is not a PNG or JPEG image$"):
        folder().source()
    (root / "b" / "notes.txt").unlink()
    (root / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"^images: b/broken\.png is not a readable image"):
        folder().load()
    save_image(root / "train" / "a" / "0.png", gray(0))
    with pytest.raises(DataError, match=r"^images: has train/ but no test/"):
        folder().load()
    save_image(root / "test" / "c" / "0.png", gray(0))
    with pytest.raises(DataError, match=r"^images: train/ has classes a but test/ has c$"):
        folder().load()


def test_folder_sources_and_fingerprints_follow_names_and_bytes(tmp_path):
    root = tmp_path / "images"
    save_image(root / "a" / "0.png", gray(0))
    save_image(root / "b" / "0.png", gray(100))
    first, again = folder(), folder()
    assert first.source() == again.source() and first.source().startswith("sha256:") and len(first.source()) == 71
    fingerprint = first.load().fingerprint()
    assert again.load().fingerprint() == fingerprint
    before = first.source()
    (root / "b" / "0.png").rename(root / "b" / "1.png")  # same bytes, another name
    renamed = first.source()
    save_image(root / "b" / "1.png", gray(101))  # same name, other pixels
    assert len({before, renamed, first.source()}) == 3
    assert folder().load().fingerprint() != fingerprint
