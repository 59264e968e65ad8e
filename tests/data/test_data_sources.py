import math
import random

import numpy as np
import pytest
import torch

from ddsweep.data.sources import (
    bayes_predict, gaussian_means, list_sources, load_source, source_options,
)
from ddsweep.errors import DataError

ALL_SOURCES = {"cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "digits", "mnist1d", "gaussians", "moons", "spirals"}
SMALL = {
    "digits": {},
    "mnist1d": {"num_samples": 100, "train_split": 0.5},
    "gaussians": {"train_size": 60, "test_size": 30},
    "moons": {"train_size": 60, "test_size": 30},
    "spirals": {"train_size": 60, "test_size": 30, "classes": 3},
}


def same(a, b):
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("x_train", "y_train", "x_test", "y_test"))


def test_registry_lists_every_source():
    assert set(list_sources()) == ALL_SOURCES
    assert source_options("cifar10") == source_options("cifar100") == {"normalize": "train_split"}
    assert source_options("mnist") == {}
    assert source_options("digits") == {"test_fraction": 0.3, "split_seed": 0}


def test_mnist1d_defaults_are_the_packages():
    from mnist1d.data import get_dataset_args

    package = get_dataset_args(as_dict=True)
    options = source_options("mnist1d")
    assert {k: package[k] for k in options} == options


def test_unknown_name_and_option():
    with pytest.raises(DataError, match=r"^data\.name: 'cifar' is not a dataset; choose one of cifar10, cifar100, digits"):
        load_source("cifar")
    with pytest.raises(DataError, match=r"^data\.sigma: not an option of dataset 'moons'; its options are: train_size, test_size, noise, seed$"):
        load_source("moons", sigma=0.1)
    with pytest.raises(DataError, match=r"^data\.epochs: .*options are: none$"):
        load_source("mnist", epochs=3)
    with pytest.raises(DataError, match=r"^data\.epochs: .*options are: normalize$"):
        load_source("cifar10", epochs=3)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_offline_source_shapes_dtypes_determinism(name):
    a = load_source(name, **SMALL[name])
    b = load_source(name, **SMALL[name])
    assert same(a, b)
    for x, y in ((a.x_train, a.y_train), (a.x_test, a.y_test)):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert tuple(x.shape[1:]) == a.in_shape and y.shape == (x.shape[0],)
        assert torch.isfinite(x).all()
        assert set(y.unique().tolist()) == set(range(a.num_classes))
    assert len(a.class_names) == a.num_classes and a.name == name


@pytest.mark.parametrize("name,option", [("digits", "split_seed"), ("mnist1d", "seed"), ("gaussians", "seed"),
                                         ("moons", "seed"), ("spirals", "seed")])
def test_seed_option_changes_the_data(name, option):
    a = load_source(name, **SMALL[name])
    b = load_source(name, **{**SMALL[name], option: 5})
    assert not same(a, b)


def test_digits_split_and_standardization():
    d = load_source("digits")
    assert d.in_shape == (1, 8, 8) and d.is_image and d.num_classes == 10
    assert len(d.x_train) + len(d.x_test) == 1797
    total = torch.bincount(torch.cat([d.y_train, d.y_test]))
    expected_test = torch.floor(0.3 * total.double() + 0.5).long()
    assert torch.equal(torch.bincount(d.y_test, minlength=10), expected_test)  # stratified
    assert abs(d.x_train.mean().item()) < 1e-4 and abs(d.x_train.std().item() - 1) < 1e-4
    (mean,), (std,) = d.mean, d.std
    assert 0 < mean < 1 and 0 < std < 1  # in pixel/16 units
    assert load_source("digits", test_fraction=0.5).x_test.shape[0] == pytest.approx(1797 / 2, abs=10)
    with pytest.raises(DataError, match=r"^data\.test_fraction: must be a number in \(0\.0, 1\.0\), got 1\.5"):
        load_source("digits", test_fraction=1.5)


def test_mnist1d_generation_leaves_global_rng_alone():
    np.random.seed(11)
    random.seed(11)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(11)
    random.seed(11)
    d = load_source("mnist1d", num_samples=100, train_split=0.25)
    assert (np.random.rand(), random.random()) == (expected_np, expected_py)
    assert d.x_train.shape == (25, 40) and d.x_test.shape == (75, 40) and not d.is_image
    assert d.mean is None and d.std is None
    with pytest.raises(DataError, match=r"^data\.num_samples: must be an integer >= 10"):
        load_source("mnist1d", num_samples=5)


def test_gaussians_means_and_bayes_rule():
    means = gaussian_means(dim=5, classes=4, separation=2.5, seed=1)
    distances = torch.pdist(torch.as_tensor(means))
    assert torch.allclose(distances, torch.full_like(distances, 2.5), atol=1e-9)
    d = load_source("gaussians", dim=5, classes=4, separation=10.0, seed=1, test_size=2000)
    m = torch.as_tensor(gaussian_means(5, 4, 10.0, 1))
    # samples scatter with unit variance around their class mean
    residual = d.x_train.double() - m[d.y_train]
    assert abs(residual.var().item() - 1) < 0.1 and residual.mean().abs().item() < 0.1
    assert (bayes_predict(d.x_test, m) == d.y_test).float().mean() > 0.99


def test_gaussians_two_class_bayes_error_is_phi_of_half_separation():
    s = 2.0
    d = load_source("gaussians", dim=3, classes=2, separation=s, test_size=20000, seed=4)
    error = (bayes_predict(d.x_test, gaussian_means(3, 2, s, 4)) != d.y_test).float().mean().item()
    expected = 0.5 * math.erfc(s / 2 / math.sqrt(2))  # Phi(-s/2) = 0.1587; sd of the estimate 0.0026
    assert abs(error - expected) < 0.013


def test_gaussians_rejects_more_classes_than_fit():
    with pytest.raises(DataError, match=r"^data\.classes: 4 equidistant class means need dim >= 3"):
        load_source("gaussians", dim=2, classes=4)


def test_moons_without_noise_lie_on_their_half_circles():
    d = load_source("moons", noise=0.0, train_size=200, test_size=10)
    x, y = d.x_train.double(), d.y_train
    centre = torch.tensor([[0.0, 0.0], [1.0, 0.5]], dtype=torch.float64)[y]  # [N, 2]
    assert torch.allclose((x - centre).norm(dim=1), torch.ones(len(x), dtype=torch.float64), atol=1e-5)
    assert torch.all(x[y == 0, 1] >= -1e-6) and torch.all(x[y == 1, 1] <= 0.5 + 1e-6)
    assert torch.equal(torch.bincount(y), torch.tensor([100, 100]))


def test_spirals_arms_without_noise():
    d = load_source("spirals", classes=3, noise=0.0, turns=1.0, train_size=300, test_size=10)
    x, y = d.x_train.double(), d.y_train
    radius = x.norm(dim=1)
    angle = torch.atan2(x[:, 1], x[:, 0])
    expected = 2 * math.pi * (radius + y / 3)
    diff = torch.remainder(angle - expected + math.pi, 2 * math.pi) - math.pi  # wrapped to [-pi, pi)
    assert diff.abs().max() < 1e-4
    assert d.num_classes == 3 and torch.equal(torch.bincount(y), torch.tensor([100, 100, 100]))


def test_n_train_subset():
    full = load_source("moons", train_size=100, test_size=10)
    a = load_source("moons", train_size=100, test_size=10, n_train=30, subset_seed=1)
    b = load_source("moons", train_size=100, test_size=10, n_train=30, subset_seed=1)
    c = load_source("moons", train_size=100, test_size=10, n_train=30, subset_seed=2)
    small = load_source("moons", train_size=100, test_size=10, n_train=10, subset_seed=1)
    assert a.x_train.shape == (30, 2) and a.y_train.shape == (30,)
    assert torch.equal(a.x_test, full.x_test)
    assert same(a, b) and not torch.equal(a.x_train, c.x_train)
    rows = {tuple(r) for r in full.x_train.tolist()}
    subset_rows = [tuple(r) for r in a.x_train.tolist()]
    assert all(r in rows for r in subset_rows) and len(set(subset_rows)) == 30
    assert {tuple(r) for r in small.x_train.tolist()} <= set(subset_rows)  # nested within one seed
    with pytest.raises(DataError, match=r"^data\.n_train: 101 exceeds the 100 training points of moons; choose at most 100 or null$"):
        load_source("moons", train_size=100, n_train=101)
    with pytest.raises(DataError, match=r"^data\.n_train: must be a positive integer"):
        load_source("moons", n_train=0)


def test_default_root_comes_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DDSWEEP_DATA", str(tmp_path / "store"))
    with pytest.raises(DataError, match=rf"^data\.root: {tmp_path}/store does not hold the CIFAR-10 files"):
        load_source("cifar10")


def test_cifar_batches_cannot_run_code(tmp_path):
    """A CIFAR batch file whose pickle would call a function is refused; the function never runs."""
    import os
    import pickle

    from ddsweep.data.sources import _read_cifar_batches
    from ddsweep.errors import DataError

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Payload(), "labels": [0]}))
    with pytest.raises(DataError, match="refusing to load"):
        _read_cifar_batches([path], "labels", "CIFAR-10")
    assert not marker.exists()
