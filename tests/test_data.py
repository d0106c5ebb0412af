"""dilbench.data: readers, search order, cache, subsets/validation, and the real shared data."""

import gzip
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from toolkit import REPO

from dilbench.data import DATASETS, DataError, DataNotFoundError, Dataset, cifar10, load_dataset, mnist
from dilbench.data.split import balanced_order

SHARED_DATA = REPO.parent / "shared" / "data"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test may see the machine's data, Keras cache or dilbench cache (or touch the network)."""
    monkeypatch.delenv("DILBENCH_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("DILBENCH_CACHE", str(tmp_path / "cache"))


# ---------------------------------------------------------------- tiny data set writers


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX as in the MNIST files: magic 2051 (images, N x rows x cols) or 2049 (labels, N)."""
    header = struct.pack(">IIII", 2051, *array.shape) if array.ndim == 3 else struct.pack(">II", 2049, len(array))
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def tiny_mnist(rng: np.random.Generator, n_train: int = 30, n_test: int = 10) -> dict[str, np.ndarray]:
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": np.arange(n_train, dtype=np.uint8) % 10,
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }


def write_mnist_idx(directory: Path, arrays: dict[str, np.ndarray], suffix: str = ".gz") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for field, stem in mnist.IDX_STEMS.items():
        write_idx(directory / (stem + suffix), arrays[field])


@pytest.fixture
def mnist_arrays():
    return tiny_mnist(np.random.default_rng(0))


@pytest.fixture
def mnist_dir(tmp_path, mnist_arrays):
    write_mnist_idx(tmp_path / "mnist_src", mnist_arrays)
    return tmp_path / "mnist_src"


def assert_mnist_equal(ds: Dataset, arrays: dict[str, np.ndarray]) -> None:
    assert ds.x_train.shape == (len(arrays["x_train"]), 28, 28, 1) and ds.x_train.dtype == np.uint8
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(ds.x_test[..., 0], arrays["x_test"])
    assert ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.y_train, arrays["y_train"])
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"])
    assert ds.class_names == tuple("0123456789")


def cifar_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
    """A pickled batch laid out like the official files: rows of R, G and B planes."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), 3 * 32 * 32)
    return pickle.dumps({b"batch_label": b"fake", b"data": data, b"labels": labels.tolist()}, protocol=2)


def tiny_cifar(rng: np.random.Generator, per_batch: int = 3) -> dict[str, np.ndarray]:
    return {
        "x_train": rng.integers(0, 256, (5 * per_batch, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 5 * per_batch),
        "x_test": rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8),
        "y_test": rng.integers(0, 10, per_batch),
    }


def write_cifar_archive(path: Path, arrays: dict[str, np.ndarray], skip: str = "") -> None:
    """A cifar-10-python.tar.gz look-alike: cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta."""
    per = len(arrays["x_test"])
    members = {
        f"data_batch_{i + 1}": cifar_batch(arrays["x_train"][i * per : (i + 1) * per], arrays["y_train"][i * per : (i + 1) * per])
        for i in range(5)
    }
    members["test_batch"] = cifar_batch(arrays["x_test"], arrays["y_test"])
    members["batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in CIFAR_CLASSES]}, protocol=2)
    with tarfile.open(path, "w:gz") as archive:
        directory = tarfile.TarInfo("cifar-10-batches-py")
        directory.type = tarfile.DIRTYPE
        archive.addfile(directory)
        for name, blob in members.items():
            if name != skip:
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(blob)
                archive.addfile(info, io.BytesIO(blob))


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def image_tree(rng: np.random.Generator, classes=("cat", "ant", "bee"), shape=(6, 5, 3), per_class=(3, 2)) -> dict[str, bytes]:
    """{relative path: PNG bytes} for train/<class>/NN.png and test/<class>/NN.png."""
    files = {}
    for split, count in zip(("train", "test"), per_class, strict=True):
        for cls in classes:
            for index in range(count):
                pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                files[f"{split}/{cls}/{index:02d}.png"] = png(pixels[..., 0] if shape[-1] == 1 else pixels)
    return files


def write_tree(directory: Path, files: dict[str, bytes]) -> Path:
    for name, blob in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(blob)
    return directory


def write_tar(path: Path, files: dict[str, bytes], prefix: str = "") -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith("gz") else "w") as archive:
        for name, blob in reversed(files.items()):  # reversed: the reader must sort, not trust order
            info = tarfile.TarInfo(prefix + name)
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    return path


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, blob in files.items():
            archive.writestr(name, blob)
    return path


def expected_tree(files: dict[str, bytes], split: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """What an ImageFolder reader must return for `split`: sorted by class then name."""
    classes = tuple(sorted({name.split("/")[1] for name in files if name.startswith("train/")}))
    names = [name for name in files if name.startswith(split + "/") and name.endswith(".png")]
    names.sort(key=lambda name: (name.split("/")[1], name))
    images = np.stack([np.asarray(Image.open(io.BytesIO(files[name]))) for name in names])
    labels = np.array([classes.index(name.split("/")[1]) for name in names])
    return (images[..., np.newaxis] if images.ndim == 3 else images), labels, classes


# ---------------------------------------------------------------- MNIST


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_mnist_idx_round_trips_exactly(tmp_path, mnist_arrays, suffix):
    write_mnist_idx(tmp_path / "d", mnist_arrays, suffix)
    ds = load_dataset("mnist", tmp_path / "d")
    assert_mnist_equal(ds, mnist_arrays)
    assert ds.source == str(tmp_path / "d")


def test_mnist_idx_reads_non_square_images(tmp_path):
    images = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / "x.gz", images)
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "x.gz", mnist.IMAGES_MAGIC), images)


def test_mnist_found_in_dataset_subdirectory_and_via_one_idx_file(tmp_path, mnist_arrays):
    write_mnist_idx(tmp_path / "root" / "mnist", mnist_arrays)
    assert_mnist_equal(load_dataset("mnist", tmp_path / "root"), mnist_arrays)
    one_file = tmp_path / "root" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert_mnist_equal(load_dataset("mnist", one_file), mnist_arrays)


def test_mnist_npz_as_directory_and_file(tmp_path, mnist_arrays):
    np.savez(tmp_path / "mnist.npz", **mnist_arrays)
    assert_mnist_equal(load_dataset("mnist", tmp_path), mnist_arrays)
    assert_mnist_equal(load_dataset("mnist", tmp_path / "mnist.npz"), mnist_arrays)


def test_mnist_truncated_gzip_names_the_file(mnist_dir):
    path = mnist_dir / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"corrupt or truncated gzip file .*train-images-idx3-ubyte\.gz.*re-download"):
        load_dataset("mnist", mnist_dir)


def test_mnist_short_pixel_data_reports_header_and_size(mnist_dir):
    path = mnist_dir / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[: 16 + 1234]))
    with pytest.raises(DataError) as error:
        load_dataset("mnist", mnist_dir)
    assert str(error.value) == (
        f"corrupt MNIST file {path}: header says 10 images of 28x28 but the file holds 1234 bytes of pixels; re-download it"
    )


def test_mnist_wrong_magic_number(mnist_dir):
    labels = mnist_dir / "train-labels-idx1-ubyte.gz"
    (mnist_dir / "train-images-idx3-ubyte.gz").write_bytes(labels.read_bytes())
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: magic number 2049, expected 2051"):
        load_dataset("mnist", mnist_dir)


def test_mnist_image_and_label_counts_must_agree(mnist_dir, mnist_arrays):
    write_idx(mnist_dir / "train-labels-idx1-ubyte.gz", mnist_arrays["y_train"][:-1])
    with pytest.raises(DataError, match=r"holds 30 images but .*train-labels-idx1-ubyte\.gz holds 29 labels"):
        load_dataset("mnist", mnist_dir)


def test_mnist_incomplete_idx_set_names_the_missing_file(mnist_dir):
    (mnist_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"incomplete MNIST in .*: missing t10k-labels-idx1-ubyte\[\.gz\]"):
        load_dataset("mnist", mnist_dir)


def test_mnist_corrupt_npz(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"corrupt MNIST file .*mnist\.npz"):
        load_dataset("mnist", tmp_path)


# ---------------------------------------------------------------- CIFAR-10


@pytest.fixture
def cifar_arrays():
    return tiny_cifar(np.random.default_rng(1))


def assert_cifar_equal(ds: Dataset, arrays: dict[str, np.ndarray]) -> None:
    for field, expected in arrays.items():
        np.testing.assert_array_equal(getattr(ds, field), expected)
    assert ds.x_train.shape[1:] == (32, 32, 3) and ds.y_train.dtype == np.int64
    assert ds.class_names == CIFAR_CLASSES


def test_cifar_python_archive_round_trips_exactly(tmp_path, cifar_arrays):
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", cifar_arrays)
    assert_cifar_equal(load_dataset("cifar10", tmp_path), cifar_arrays)
    renamed = tmp_path / "copy.tgz"
    os.rename(tmp_path / "cifar-10-python.tar.gz", renamed)
    assert_cifar_equal(load_dataset("cifar10", renamed), cifar_arrays)


def test_cifar_extracted_batches_directory(tmp_path, cifar_arrays):
    write_cifar_archive(tmp_path / "a.tar.gz", cifar_arrays)
    with tarfile.open(tmp_path / "a.tar.gz") as archive:
        archive.extractall(tmp_path / "keras_home" / "datasets", filter="data")
    # Found in Keras's cache ($KERAS_HOME/datasets/cifar-10-batches-py) with no root and no env var.
    ds = load_dataset("cifar10", download=False)
    assert_cifar_equal(ds, cifar_arrays)
    assert ds.source == str(tmp_path / "keras_home" / "datasets" / "cifar-10-batches-py")


def test_cifar_missing_batch(tmp_path, cifar_arrays):
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", cifar_arrays, skip="data_batch_3")
    with pytest.raises(DataError, match=r"incomplete CIFAR-10 in .*cifar-10-python\.tar\.gz: missing data_batch_3"):
        load_dataset("cifar10", tmp_path)


def test_cifar_truncated_archive(tmp_path, cifar_arrays):
    path = tmp_path / "cifar-10-python.tar.gz"
    write_cifar_archive(path, cifar_arrays)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"corrupt or truncated archive .*cifar-10-python\.tar\.gz"):
        load_dataset("cifar10", tmp_path)


def test_cifar_batch_that_would_run_code_is_refused(tmp_path):
    evil = pickle.dumps(os.system, protocol=2)
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    for name in (*cifar10.TRAIN_BATCHES, cifar10.TEST_BATCH):
        (batches / name).write_bytes(evil)
    with pytest.raises(DataError, match=r"corrupt CIFAR-10 batch .*data_batch_1 .*refusing to load"):
        load_dataset("cifar10", tmp_path)


def test_cifar_imagefolder_archive(tmp_path):
    files = image_tree(np.random.default_rng(2), classes=CIFAR_CLASSES, shape=(32, 32, 3), per_class=(2, 1))
    write_tar(tmp_path / "cifar10-jpeg.tar.gz", files, prefix="./")
    ds = load_dataset("cifar10", tmp_path)
    for split in ("train", "test"):
        images, labels, _ = expected_tree(files, split)
        np.testing.assert_array_equal(getattr(ds, f"x_{split}"), images)
        np.testing.assert_array_equal(getattr(ds, f"y_{split}"), labels)
    assert ds.class_names == CIFAR_CLASSES and len(ds.y_train) == 20


def test_cifar_imagefolder_with_other_classes_is_rejected(tmp_path):
    write_tree(tmp_path, image_tree(np.random.default_rng(3), shape=(32, 32, 3)))
    with pytest.raises(DataError, match=r"not a CIFAR-10 ImageFolder: its classes are ant bee cat, expected exactly airplane"):
        load_dataset("cifar10", tmp_path)


# ---------------------------------------------------------------- ImageFolder


@pytest.mark.parametrize("form", ["dir", "tar.gz", "tar", "zip"])
def test_imagefolder_forms_round_trip_exactly(tmp_path, form):
    files = image_tree(np.random.default_rng(4))
    files["README.txt"] = b"not an image"
    files["train/cat/.DS_Store"] = b"junk"
    if form == "dir":
        root = write_tree(tmp_path / "tree", files)
    elif form == "zip":
        root = write_zip(tmp_path / "set.zip", files)
    else:
        root = write_tar(tmp_path / f"set.{form}", files, prefix="wrapped/")
    ds = load_dataset("imagefolder", root)
    for split in ("train", "test"):
        images, labels, classes = expected_tree(files, split)
        np.testing.assert_array_equal(getattr(ds, f"x_{split}"), images)
        np.testing.assert_array_equal(getattr(ds, f"y_{split}"), labels)
    assert ds.class_names == ("ant", "bee", "cat") == classes
    assert ds.x_train.shape == (9, 6, 5, 3) and ds.x_test.shape == (6, 6, 5, 3)


def test_imagefolder_grayscale_keeps_one_channel(tmp_path):
    files = image_tree(np.random.default_rng(5), shape=(4, 4, 1))
    ds = load_dataset("imagefolder", write_tree(tmp_path, files))
    images, _, _ = expected_tree(files, "train")
    assert ds.x_train.shape == (9, 4, 4, 1)
    np.testing.assert_array_equal(ds.x_train, images)


def test_imagefolder_mixed_grayscale_and_colour_becomes_rgb(tmp_path):
    files = image_tree(np.random.default_rng(6), shape=(4, 4, 3))
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4)
    files["train/ant/00.png"] = png(gray)
    ds = load_dataset("imagefolder", write_tree(tmp_path, files))
    assert ds.x_train.shape == (9, 4, 4, 3)
    np.testing.assert_array_equal(ds.x_train[0], np.stack([gray] * 3, axis=-1))


def test_imagefolder_odd_size_names_the_file(tmp_path):
    files = image_tree(np.random.default_rng(7))
    files["test/bee/01.png"] = png(np.zeros((7, 5, 3), np.uint8))
    write_tree(tmp_path, files)
    with pytest.raises(DataError, match=r"image .*/test/bee/01\.png is 5x7 but .*/train/ant/00\.png is 5x6"):
        load_dataset("imagefolder", tmp_path)


def test_imagefolder_undecodable_image_names_the_file(tmp_path):
    files = image_tree(np.random.default_rng(8))
    files["train/bee/01.png"] = files["train/bee/01.png"][:40]
    with pytest.raises(DataError, match=r"cannot decode image .*set\.zip/train/bee/01\.png"):
        load_dataset("imagefolder", write_zip(tmp_path / "set.zip", files))


def test_imagefolder_needs_both_splits_and_known_test_classes(tmp_path):
    files = image_tree(np.random.default_rng(9))
    only_train = {name: blob for name, blob in files.items() if name.startswith("train/")}
    with pytest.raises(DataError, match=r"no images under test/<class>/"):
        load_dataset("imagefolder", write_zip(tmp_path / "a.zip", only_train))
    files["test/wasp/00.png"] = files["test/ant/00.png"]
    with pytest.raises(DataError, match=r"test classes wasp .* have no train/ folder"):
        load_dataset("imagefolder", write_zip(tmp_path / "b.zip", files))


# ---------------------------------------------------------------- where data is looked for


def test_not_found_lists_every_place_and_the_accepted_names(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        load_dataset("mnist", download=False)
    message = str(error.value)
    assert "\n" not in message
    assert "$DILBENCH_DATA (not set)" in message
    assert str(tmp_path / "keras_home" / "datasets") in message
    assert "train-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message and "mnist.npz" in message
    assert "set data.root or $DILBENCH_DATA" in message


def test_env_directory_and_its_dataset_subdirectory_are_searched(tmp_path, monkeypatch, mnist_arrays):
    monkeypatch.setenv("DILBENCH_DATA", str(tmp_path / "env"))
    (tmp_path / "env").mkdir()
    with pytest.raises(DataNotFoundError, match=rf"looked in: {tmp_path}/env, {tmp_path}/env/cifar10, "):
        load_dataset("cifar10", download=False)
    write_mnist_idx(tmp_path / "env" / "mnist", mnist_arrays)
    assert load_dataset("mnist", download=False).source == str(tmp_path / "env" / "mnist")


def test_keras_cache_mnist_npz(tmp_path, mnist_arrays):
    (tmp_path / "keras_home" / "datasets").mkdir(parents=True)
    np.savez(tmp_path / "keras_home" / "datasets" / "mnist.npz", **mnist_arrays)
    assert_mnist_equal(load_dataset("mnist", download=False), mnist_arrays)


def test_explicit_root_is_the_only_place_searched(tmp_path, monkeypatch, mnist_arrays):
    write_mnist_idx(tmp_path / "env", mnist_arrays)
    monkeypatch.setenv("DILBENCH_DATA", str(tmp_path / "env"))
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(mnist, "_fetch", lambda: pytest.fail("an explicit root must not download"))
    with pytest.raises(DataNotFoundError, match=rf"looked in: {tmp_path}/empty, {tmp_path}/empty/mnist;"):
        load_dataset("mnist", tmp_path / "empty")
    with pytest.raises(DataNotFoundError, match=r"data root .*/nowhere does not exist; set data.root"):
        load_dataset("mnist", tmp_path / "nowhere")


def test_download_is_the_last_resort_and_its_failure_is_reported(tmp_path, monkeypatch, mnist_arrays):
    def offline():
        raise OSError("URL fetch failure on https://example: no internet")

    monkeypatch.setattr(mnist, "_fetch", offline)
    with pytest.raises(DataNotFoundError, match=r"the download failed \(URL fetch failure .* no internet\); set data.root"):
        load_dataset("mnist")
    np.savez(tmp_path / "fetched.npz", **mnist_arrays)
    monkeypatch.setattr(mnist, "_fetch", lambda: tmp_path / "fetched.npz")
    assert_mnist_equal(load_dataset("mnist"), mnist_arrays)


def test_unknown_dataset_suggests_the_nearest_name():
    with pytest.raises(DataError, match=r"unknown dataset 'mnsit'; did you mean 'mnist'\?"):
        load_dataset("mnsit")


def test_registry_lists_every_dataset_with_a_description():
    assert list(DATASETS) == ["mnist", "cifar10", "imagefolder", "mnist_bundled"]
    assert all(isinstance(text, str) and text and "\n" not in text for text in DATASETS.values())
    assert "first 8,000" in DATASETS["mnist_bundled"] and "last 2,000" in DATASETS["mnist_bundled"]


def test_importing_the_package_does_not_import_tensorflow():
    code = "import sys, dilbench.data; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# ---------------------------------------------------------------- cache


def test_second_load_reads_the_cache_and_a_changed_source_is_decoded_again(tmp_path, monkeypatch, mnist_dir, mnist_arrays):
    calls = []
    real = mnist.read_idx_set
    monkeypatch.setattr(mnist, "read_idx_set", lambda paths: calls.append(1) or real(paths))
    cache_dir = tmp_path / "my_cache"

    assert_mnist_equal(load_dataset("mnist", mnist_dir, cache_dir=cache_dir), mnist_arrays)
    assert_mnist_equal(load_dataset("mnist", mnist_dir, cache_dir=cache_dir), mnist_arrays)
    assert len(calls) == 1
    assert sorted(p.name.split(".", 1)[1] for p in cache_dir.iterdir()) == ["npz", "sha256.json"]  # no temp files left behind

    labels = mnist_dir / "t10k-labels-idx1-ubyte.gz"
    os.utime(labels, ns=(labels.stat().st_atime_ns, labels.stat().st_mtime_ns + 10**9))  # touch
    load_dataset("mnist", mnist_dir, cache_dir=cache_dir)
    assert len(calls) == 2

    changed = dict(mnist_arrays, y_test=(mnist_arrays["y_test"] + 1) % 10)
    write_mnist_idx(mnist_dir, changed)
    assert_mnist_equal(load_dataset("mnist", mnist_dir, cache_dir=cache_dir), changed)
    assert len(calls) == 3 and len(list(cache_dir.glob("*.npz"))) == 1  # overwritten, not accumulated
    assert len(list(cache_dir.glob("*.sha256.json"))) == 1


def test_corrupt_cache_is_silently_decoded_again(tmp_path, mnist_dir, mnist_arrays):
    load_dataset("mnist", mnist_dir)  # default cache dir: $DILBENCH_CACHE
    (cache_file,) = (tmp_path / "cache").glob("*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:1000])
    assert_mnist_equal(load_dataset("mnist", mnist_dir), mnist_arrays)


def test_imagefolder_directory_cache_notices_an_added_image(tmp_path):
    files = image_tree(np.random.default_rng(10))
    root = write_tree(tmp_path / "tree", files)
    assert len(load_dataset("imagefolder", root).y_train) == 9
    (root / "train" / "ant" / "99.png").write_bytes(files["train/ant/00.png"])
    assert len(load_dataset("imagefolder", root).y_train) == 10


def test_the_source_digest_is_each_files_sha256_computed_once_and_again_after_a_change(tmp_path, monkeypatch, mnist_dir):
    import hashlib

    from dilbench.data import cache

    hashed = []
    real = cache.file_sha256
    monkeypatch.setattr(cache, "file_sha256", lambda path: hashed.append(path.name) or real(path))
    digest = load_dataset("mnist", mnist_dir).digest
    files = sorted(mnist_dir.iterdir())
    lines = "".join(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n" for f in files)  # sha256sum's output
    assert digest == {"dataset": "mnist", "path": str(mnist_dir), "size": sum(f.stat().st_size for f in files),
                      "sha256": hashlib.sha256(lines.encode()).hexdigest(), "file_count": 4,
                      "files": [{"name": f.name, "size": f.stat().st_size, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
                                for f in files]}
    assert len(hashed) == 4
    assert load_dataset("mnist", mnist_dir, train_subset=10).digest == digest and len(hashed) == 4  # from the cache
    labels = mnist_dir / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes())[:8] + bytes(range(10))))
    changed = load_dataset("mnist", mnist_dir).digest
    assert len(hashed) == 8 and changed["sha256"] != digest["sha256"]


def test_a_single_file_source_digest_is_the_files_own_sha256_also_with_an_unwritable_cache(tmp_path, monkeypatch):
    import hashlib

    from dilbench.data.mnist_bundled import FILE

    (tmp_path / "missing").write_text("a file where the cache directory would go")
    monkeypatch.setenv("DILBENCH_CACHE", str(tmp_path / "missing" / "cache"))
    digest = load_dataset("mnist_bundled").digest
    assert digest["sha256"] == hashlib.sha256(FILE.read_bytes()).hexdigest() and digest["file_count"] == 1
    assert "files" not in digest and digest["path"] == str(FILE) and digest["size"] == FILE.stat().st_size


# ---------------------------------------------------------------- subsets and validation


@pytest.fixture
def balanced_dir(tmp_path):
    """MNIST-format data with 20 train images of each digit (200) and 10 test images of each (100)."""
    rng = np.random.default_rng(11)
    arrays = {
        "x_train": rng.integers(0, 256, (200, 28, 28), dtype=np.uint8),
        "y_train": rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), 20)),
        "x_test": rng.integers(0, 256, (100, 28, 28), dtype=np.uint8),
        "y_test": np.repeat(np.arange(10, dtype=np.uint8), 10),
    }
    write_mnist_idx(tmp_path / "balanced", arrays)
    return tmp_path / "balanced"


def test_subsets_are_exact_balanced_subsets_and_seeded(balanced_dir):
    full = load_dataset("mnist", balanced_dir)
    ds = load_dataset("mnist", balanced_dir, train_subset=50, test_subset=20, seed=3)
    assert len(ds.y_train) == 50 and len(ds.y_test) == 20
    assert np.bincount(ds.y_test).tolist() == [2] * 10
    assert np.bincount(ds.y_train, minlength=10).tolist() == [5] * 10
    # Each picked image is one of the originals with its own label.
    picked = [int(np.flatnonzero((full.x_train == image).all(axis=(1, 2, 3)))[0]) for image in ds.x_train]
    assert picked == sorted(picked)  # source order kept
    np.testing.assert_array_equal(full.y_train[picked], ds.y_train)

    again = load_dataset("mnist", balanced_dir, train_subset=50, test_subset=20, seed=3)
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    np.testing.assert_array_equal(again.x_test, ds.x_test)
    other = load_dataset("mnist", balanced_dir, train_subset=50, test_subset=20, seed=4)
    assert not np.array_equal(other.x_train, ds.x_train)
    # The training subset does not depend on the test subset.
    np.testing.assert_array_equal(load_dataset("mnist", balanced_dir, train_subset=50, seed=3).x_train, ds.x_train)


@pytest.mark.parametrize(("field", "size"), [("train_subset", 201), ("test_subset", 0), ("train_subset", 2.5)])
def test_subset_out_of_range(balanced_dir, field, size):
    with pytest.raises(DataError, match=rf"{field}={size!r} is not a count between 1 and the \d+ "):
        load_dataset("mnist", balanced_dir, **{field: size})


@pytest.mark.parametrize(("validation", "n_val"), [(0.1, 5), (7, 7), (7.0, 7), (0.25, 12)])
def test_validation_holds_out_exact_counts_from_the_subset(balanced_dir, validation, n_val):
    base = load_dataset("mnist", balanced_dir, train_subset=50, seed=5)
    ds = load_dataset("mnist", balanced_dir, train_subset=50, validation=validation, seed=5)
    assert len(ds.y_val) == n_val and len(ds.y_train) == 50 - n_val and len(ds.x_val) == n_val
    # Train and validation partition the subset exactly.
    joined = np.concatenate([ds.x_train, ds.x_val]).reshape(50, -1)
    assert sorted(map(bytes, joined)) == sorted(map(bytes, base.x_train.reshape(50, -1)))
    again = load_dataset("mnist", balanced_dir, train_subset=50, validation=validation, seed=5)
    np.testing.assert_array_equal(again.x_val, ds.x_val)
    np.testing.assert_array_equal(ds.x_test, base.x_test)  # the test set is untouched


def test_no_validation_gives_empty_arrays_of_the_right_shape(balanced_dir):
    ds = load_dataset("mnist", balanced_dir)
    assert ds.x_val.shape == (0, 28, 28, 1) and ds.x_val.dtype == np.uint8
    assert ds.y_val.shape == (0,) and ds.y_val.dtype == np.int64


@pytest.mark.parametrize("validation", [200, -1, 1.5, 0.001, True, "0.1"])
def test_bad_validation_is_a_data_error(balanced_dir, validation):
    with pytest.raises(DataError, match=r"validation="):
        load_dataset("mnist", balanced_dir, validation=validation)


def test_balanced_order_deals_classes_round_robin():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 3)
    order = balanced_order(labels, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(12))
    assert sorted(labels[order[:3]].tolist()) == [0, 1, 2] and sorted(labels[order[3:6]].tolist()) == [0, 1, 2]


def test_dataset_built_by_hand_gets_empty_validation_arrays():
    x, y = np.zeros((4, 2, 2, 1), np.uint8), np.zeros(4, np.int64)
    ds = Dataset("toy", x, y, x, y, ("a",), "memory")
    assert ds.x_val.shape == (0, 2, 2, 1) and ds.num_classes == 1 and ds.image_shape == (2, 2, 1)
    assert "train=4" in repr(ds)
    with pytest.raises(ValueError, match="y_test must be int64"):
        Dataset("toy", x, y, x, y.astype(np.uint8), ("a",), "memory")


# ---------------------------------------------------------------- the real shared data and the bundled subset

needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data not found at {SHARED_DATA}")


@needs_shared
def test_real_mnist(tmp_path):
    ds = load_dataset("mnist", SHARED_DATA, cache_dir=tmp_path)
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert ds.source == str(SHARED_DATA / "mnist")


@pytest.fixture(scope="module")
def real_cifar(tmp_path_factory):
    """Decoded once per test module (about ten seconds); the tests share its cache."""
    if not (SHARED_DATA / "cifar10" / "cifar10-jpeg.tar.gz").is_file():
        pytest.skip(f"shared CIFAR-10 archive not found under {SHARED_DATA / 'cifar10'}")
    cache_dir = tmp_path_factory.mktemp("cifar_cache")
    return load_dataset("cifar10", SHARED_DATA, cache_dir=cache_dir, download=False), cache_dir


def test_real_cifar_jpeg_archive(real_cifar):
    ds, _ = real_cifar
    assert ds.x_train.shape == (50000, 32, 32, 3) and ds.x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(ds.y_train).tolist() == [5000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.class_names == CIFAR_CLASSES
    assert ds.source == str(SHARED_DATA / "cifar10" / "cifar10-jpeg.tar.gz")


def test_real_cifar_cached_load_matches_and_subsets(real_cifar, monkeypatch):
    ds, cache_dir = real_cifar
    monkeypatch.setattr("dilbench.data.imagefolder.decode", lambda *a: pytest.fail("must come from the cache"))
    small = load_dataset("cifar10", SHARED_DATA, cache_dir=cache_dir, train_subset=1000, validation=100)
    assert np.bincount(small.y_train).tolist() == [90] * 10 and np.bincount(small.y_val).tolist() == [10] * 10
    np.testing.assert_array_equal(load_dataset("cifar10", SHARED_DATA, cache_dir=cache_dir).x_test, ds.x_test)


def test_bundled_mnist_is_the_real_test_set_split_8000_2000():
    ds = load_dataset("mnist_bundled")
    assert ds.x_train.shape == (8000, 28, 28, 1) and ds.x_test.shape == (2000, 28, 28, 1)
    assert ds.y_train[:5].tolist() == [7, 2, 1, 0, 4]
    if SHARED_DATA.is_dir():
        images = mnist.read_idx(SHARED_DATA / "mnist" / "t10k-images-idx3-ubyte.gz", mnist.IMAGES_MAGIC)
        labels = mnist.read_idx(SHARED_DATA / "mnist" / "t10k-labels-idx1-ubyte.gz", mnist.LABELS_MAGIC)
        np.testing.assert_array_equal(np.concatenate([ds.x_train, ds.x_test])[..., 0], images)
        np.testing.assert_array_equal(np.concatenate([ds.y_train, ds.y_test]), labels)
