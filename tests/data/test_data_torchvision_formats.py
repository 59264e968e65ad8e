"""Tiny files in each dataset's real on-disk format, loaded through `load_source`."""

import pickle
import struct

import numpy as np
import pytest
import torch

from ddsweep.data import constants
from ddsweep.data.sources import load_source
from ddsweep.errors import DataError


def normalized(value_u8, mean, std):
    return (value_u8 / 255.0 - mean) / std


def write_pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def cifar_images(n, offset):
    """[n, 3072] uint8 rows: 1024 red, 1024 green, 1024 blue values, each plane row-major 32x32."""
    rng = np.random.default_rng(offset)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)


def write_cifar10(root, per_batch=4, n_test=3, bytes_keys=True):
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    base = root / "cifar-10-batches-py"
    images, labels = [], []
    for i in range(1, 6):
        data, y = cifar_images(per_batch, i), [(i + j) % 10 for j in range(per_batch)]
        write_pickle(base / f"data_batch_{i}", {key("batch_label"): b"training batch", key("labels"): y,
                                                key("data"): data, key("filenames"): [b"x.png"] * per_batch})
        images.append(data)
        labels += y
    test = cifar_images(n_test, 99)
    write_pickle(base / "test_batch", {key("labels"): [9, 0, 3][:n_test], key("data"): test})
    write_pickle(base / "batches.meta", {key("label_names"): list(constants.CIFAR10_CLASSES),
                                         key("num_cases_per_batch"): per_batch, key("num_vis"): 3072})
    return np.concatenate(images), labels, test


@pytest.mark.parametrize("bytes_keys", [True, False])
def test_cifar10(tmp_path, bytes_keys):
    images, labels, test = write_cifar10(tmp_path, bytes_keys=bytes_keys)
    d = load_source("cifar10", root=tmp_path)
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_test.shape == (3, 3, 32, 32)
    assert d.y_train.tolist() == labels and d.y_test.tolist() == [9, 0, 3]
    assert d.in_shape == (3, 32, 32) and d.num_classes == 10 and d.is_image
    assert d.mean == constants.CIFAR10_MEAN and d.std == constants.CIFAR10_STD
    # layout: row = [R plane | G plane | B plane], each 32x32 row-major
    n, c, h, w = 7, 1, 5, 30
    value = images[n, c * 1024 + h * 32 + w]
    expected = normalized(value, constants.CIFAR10_MEAN[c], constants.CIFAR10_STD[c])
    assert d.x_train[n, c, h, w].item() == pytest.approx(expected, abs=1e-5)
    assert torch.allclose(d.x_test[2, 2].double(), torch.as_tensor(
        normalized(test[2, 2048:].reshape(32, 32).astype(np.float64), constants.CIFAR10_MEAN[2], constants.CIFAR10_STD[2])), atol=1e-5)


def test_cifar10_pytorch_cifar_normalization(tmp_path):
    images, _, test = write_cifar10(tmp_path)
    d = load_source("cifar10", root=tmp_path, normalize="pytorch_cifar")
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)  # dbViz / Li et al.: written out here
    std = torch.tensor([0.2023, 0.1994, 0.2010]).view(3, 1, 1)
    expected = (torch.as_tensor(images).reshape(-1, 3, 32, 32).double() / 255 - mean) / std
    torch.testing.assert_close(d.x_train.double(), expected, atol=1e-5, rtol=0)
    expected_test = (torch.as_tensor(test).reshape(-1, 3, 32, 32).double() / 255 - mean) / std
    torch.testing.assert_close(d.x_test.double(), expected_test, atol=1e-5, rtol=0)
    assert d.mean == (0.4914, 0.4822, 0.4465) and d.std == (0.2023, 0.1994, 0.2010)
    default = load_source("cifar10", root=tmp_path, normalize="train_split")
    assert torch.equal(default.x_train, load_source("cifar10", root=tmp_path).x_train)
    assert default.std == (0.2470, 0.2435, 0.2616)
    for bad in ("imagenet", 3, ["pytorch_cifar"]):
        with pytest.raises(DataError, match=r"^data\.normalize: .* not a normalization of cifar10; "
                                            r"choose one of train_split, pytorch_cifar$"):
            load_source("cifar10", root=tmp_path, normalize=bad)


def test_cifar10_missing_and_corrupt_files(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match=rf"^data\.root: {tmp_path} does not hold the CIFAR-10 files \(expected "
                                        r".*cifar-10-batches-py/data_batch_1\.\.5, test_batch\); set data\.download=true"):
        load_source("cifar10", root=tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"^data\.root: .*data_batch_3 is not a readable CIFAR-10 file"):
        load_source("cifar10", root=tmp_path)


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3]\n Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError, match=r"^data\.download: could not download CIFAR-10 into .*name resolution>$"):
        load_source("cifar10", root=tmp_path, download=True)


def test_cifar100_fine_labels(tmp_path):
    base = tmp_path / "cifar-100-python"
    train, test = cifar_images(6, 1), cifar_images(2, 2)
    write_pickle(base / "train", {b"filenames": [], b"fine_labels": [0, 99, 5, 17, 42, 42],
                                  b"coarse_labels": [4, 1, 2, 3, 0, 0], b"data": train})
    write_pickle(base / "test", {b"fine_labels": [98, 1], b"coarse_labels": [0, 0], b"data": test})
    write_pickle(base / "meta", {b"fine_label_names": list(constants.CIFAR100_CLASSES), b"coarse_label_names": []})
    d = load_source("cifar100", root=tmp_path)
    assert d.num_classes == 100 and len(d.class_names) == 100 and d.class_names[99] == "worm"
    assert d.y_train.tolist() == [0, 99, 5, 17, 42, 42] and d.y_test.tolist() == [98, 1]
    assert d.x_train[1, 0, 0, 0].item() == pytest.approx(
        normalized(train[1, 0], constants.CIFAR100_MEAN[0], constants.CIFAR100_STD[0]), abs=1e-5)
    with pytest.raises(DataError, match=r"^data\.root: .*cifar-100-python/train, test\)"):
        load_source("cifar100", root=tmp_path / "elsewhere")
    d = load_source("cifar100", root=tmp_path, normalize="pytorch_cifar")
    assert d.x_train[1, 2, 0, 0].item() == pytest.approx(normalized(train[1, 2048], 0.4465, 0.2010), abs=1e-5)


def write_idx(path, array):
    """idx format: 0x0000 08 ndim magic (ubyte data), big-endian int32 dims, then the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name,folder,mean,std", [
    ("mnist", "MNIST", constants.MNIST_MEAN, constants.MNIST_STD),
    ("fashion_mnist", "FashionMNIST", constants.FASHION_MNIST_MEAN, constants.FASHION_MNIST_STD),
])
def test_idx_files(tmp_path, name, folder, mean, std):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    train, test = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 256, (2, 28, 28))
    write_idx(raw / "train-images-idx3-ubyte", train)
    write_idx(raw / "train-labels-idx1-ubyte", np.array([3, 1, 4, 1, 5]))
    write_idx(raw / "t10k-images-idx3-ubyte", test)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.array([9, 2]))
    d = load_source(name, root=tmp_path)
    assert d.x_train.shape == (5, 1, 28, 28) and d.x_test.shape == (2, 1, 28, 28)
    assert d.y_train.tolist() == [3, 1, 4, 1, 5] and d.y_test.tolist() == [9, 2]
    assert d.x_train[2, 0, 7, 20].item() == pytest.approx(normalized(train[2, 7, 20], mean[0], std[0]), abs=1e-5)
    assert d.mean == mean and d.num_classes == 10
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=rf"^data\.root: {tmp_path} does not hold the .*MNIST files .*t10k-labels-idx1-ubyte"):
        load_source(name, root=tmp_path)


def test_svhn_mat_files(tmp_path):
    import scipy.io

    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (32, 32, 3, 4), dtype=np.uint8)  # [H, W, C, N]
    x_test = rng.integers(0, 256, (32, 32, 3, 2), dtype=np.uint8)
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": x_train, "y": np.array([[10], [1], [9], [10]], dtype=np.uint8)})
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": x_test, "y": np.array([[2], [10]], dtype=np.uint8)})
    d = load_source("svhn", root=tmp_path)
    assert d.x_train.shape == (4, 3, 32, 32) and d.x_test.shape == (2, 3, 32, 32)
    assert d.y_train.tolist() == [0, 1, 9, 0] and d.y_test.tolist() == [2, 0]  # 10 means digit 0
    n, c, h, w = 3, 2, 4, 17
    expected = normalized(x_train[h, w, c, n], constants.SVHN_MEAN[c], constants.SVHN_STD[c])
    assert d.x_train[n, c, h, w].item() == pytest.approx(expected, abs=1e-5)
    (tmp_path / "test_32x32.mat").unlink()
    with pytest.raises(DataError, match=r"^data\.root: .* does not hold the SVHN files \(expected .*test_32x32\.mat\)"):
        load_source("svhn", root=tmp_path)
