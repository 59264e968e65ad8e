"""The vectorized MNIST-1D generator equals the mnist1d package's own, bit for bit."""
import numpy as np
import pytest
import torch

from ddsweep.data import mnist1d_fast
from ddsweep.data.sources import load_source


def package_args(num_samples, train_split, seed, **changes):
    from mnist1d.data import get_dataset_args

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, train_split, seed
    for key, value in changes.items():
        setattr(args, key, value)
    return args


@pytest.mark.parametrize("num_samples,train_split,seed,changes", [
    (200, 0.8, 0, {}),
    (1000, 0.25, 42, {}),
    (300, 0.5, 7, {"padding": [10, 20], "max_translation": 5, "template_len": 12}),
])
def test_equals_the_package_generator(num_samples, train_split, seed, changes):
    from mnist1d.data import make_dataset

    ref = make_dataset(package_args(num_samples, train_split, seed, **changes))
    got = mnist1d_fast.make_dataset(package_args(num_samples, train_split, seed, **changes))
    for key in ("x", "x_test", "y", "y_test"):
        assert got[key].dtype == ref[key].dtype and got[key].shape == ref[key].shape, key
        assert np.array_equal(got[key], ref[key]), key  # bit for bit, not close


def test_leaves_the_rng_where_the_package_does():
    from mnist1d.data import make_dataset

    make_dataset(package_args(100, 0.8, 3))
    after_package = np.random.rand(5)
    mnist1d_fast.make_dataset(package_args(100, 0.8, 3))
    assert np.array_equal(np.random.rand(5), after_package)


def test_shuffle_seq_is_refused():
    with pytest.raises(ValueError, match="shuffle_seq"):
        mnist1d_fast.make_dataset(package_args(100, 0.8, 0, shuffle_seq=True))


def test_the_source_serves_the_package_data(tmp_path, monkeypatch):
    from mnist1d.data import make_dataset

    monkeypatch.setenv("DDSWEEP_CACHE", str(tmp_path))
    d = load_source("mnist1d", num_samples=400, train_split=0.25, seed=5)
    ref = make_dataset(package_args(400, 0.25, 5))
    assert torch.equal(d.x_train, torch.as_tensor(ref["x"], dtype=torch.float32))
    assert torch.equal(d.y_test, torch.as_tensor(ref["y_test"], dtype=torch.int64))
