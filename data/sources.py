"""Datasets by name from a registry: `load_source("cifar10")`, `list_sources()`, `source_options(name)`.

A source is a function registered with `@register_source`. Sources that read files take
`(root: Path, download: bool)` positionally; every source's keyword-only parameters are its options
(`data.<option>` in a config), with their defaults read from the signature. Sources registered
with `cache=(packages...)` (the generated ones and the bundled digits) are cached on disk by
data.cache, keyed by name, options, the versions of numpy, torch and those packages, and the text
of this file and data/constants.py.

File formats. MNIST and Fashion-MNIST are read by torchvision's own classes (they only check that
the idx files exist). CIFAR-10/100 and SVHN are read here, with the same format logic as
torchvision (`cifar.py`, `svhn.py`), because torchvision's classes refuse any file whose md5 is not
the published one even with download=False; their readers would be unusable on anything but the
full official files, and patching their private integrity checks would be fragile. Downloading
(download=true) still goes through torchvision, which verifies the md5 of what it fetches.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import math
import os
import pickle
import random
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ddsweep.data import constants
from ddsweep.data.cache import cached
from ddsweep.errors import DataError


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test pair held in memory, inputs normalized, labels clean."""

    name: str
    x_train: torch.Tensor = field(repr=False)  # [N, *in_shape] float32, normalized
    y_train: torch.Tensor = field(repr=False)  # [N] int64, clean labels
    x_test: torch.Tensor = field(repr=False)  # [M, *in_shape] float32
    y_test: torch.Tensor = field(repr=False)  # [M] int64
    num_classes: int
    class_names: tuple[str, ...]
    in_shape: tuple[int, ...]
    mean: tuple[float, ...] | None  # normalization constants applied; None when none were
    std: tuple[float, ...] | None
    is_image: bool  # inputs are [C, H, W]: crop / flip augmentation allowed

    def __post_init__(self):
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if tuple(x.shape[1:]) != self.in_shape or x.dtype != torch.float32:
                raise ValueError(
                    f"{self.name} x_{split}: {x.dtype} {tuple(x.shape)} is not float32 [N, *{self.in_shape}]"
                )
            if y.shape != (x.shape[0],) or y.dtype != torch.int64:
                raise ValueError(f"{self.name} y_{split}: {y.dtype} {tuple(y.shape)} is not int64 [{x.shape[0]}]")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes")


@dataclass(frozen=True)
class _Source:
    fn: Callable[..., Dataset]
    reads_files: bool  # takes (root, download)
    options: dict[str, object]  # keyword-only option -> default
    cache: tuple[str, ...] | None  # cached on disk, keyed also by these packages' versions; None: never


_SOURCES: dict[str, _Source] = {}


def register_source(fn: Callable[..., Dataset] | None = None, *, cache: tuple[str, ...] | None = None):
    """Register a source under its function name (timm's `register_model` pattern). With `cache`
    (`@register_source(cache=("mnist1d",))`: the packages besides numpy and torch its data depends
    on) the dataset is cached on disk (data.cache); only for sources whose data is a function of
    their options, those packages and this code."""
    if fn is None:
        return functools.partial(register_source, cache=cache)
    params = inspect.signature(fn).parameters.values()
    options = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    reads_files = [p.name for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY] == ["root", "download"]
    _SOURCES[fn.__name__] = _Source(fn, reads_files, options, None if cache is None else tuple(cache))
    return fn


def list_sources() -> list[str]:
    return sorted(_SOURCES)


def _get_source(name: str) -> _Source:
    if name not in _SOURCES:
        raise DataError(f"data.name: {name!r} is not a dataset; choose one of {', '.join(list_sources())}")
    return _SOURCES[name]


def source_options(name: str) -> dict[str, object]:
    """The source-specific options of `name` and their defaults."""
    return dict(_get_source(name).options)


def default_root() -> Path:
    return Path(os.environ.get("DDSWEEP_DATA") or "~/.cache/ddsweep/data").expanduser()


def load_source(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
    n_train: int | None = None,
    subset_seed: int = 0,
    **options,
) -> Dataset:
    """Load dataset `name`; `n_train` keeps a random train subset of that size drawn from
    `subset_seed` (subsets of one seed are nested: the first n of a fixed permutation, in
    original order). `root` defaults to $DDSWEEP_DATA or ~/.cache/ddsweep/data; offline sources
    ignore `root` and `download`."""
    source = _get_source(name)
    unknown = sorted(set(options) - set(source.options))
    if unknown:
        allowed = ", ".join(source.options) or "none"
        raise DataError(f"data.{unknown[0]}: not an option of dataset {name!r}; its options are: {allowed}")
    if source.reads_files:
        dataset = source.fn(Path(root).expanduser() if root is not None else default_root(), bool(download), **options)
    elif source.cache is not None:
        dataset = Dataset(**cached(name, _cache_depends(name, source, options), lambda: _fields(source.fn(**options))))
    else:
        dataset = source.fn(**options)
    return dataset if n_train is None else _train_subset(dataset, n_train, subset_seed)


def cache_source(name: str, **options) -> bool:
    """Generate and cache the dataset of a cached source (or find it already cached); False, doing
    nothing, for a source that is not cached (files on disk, or never cached)."""
    source = _get_source(name)
    if source.reads_files or source.cache is None:
        return False
    load_source(name, **options)
    return True


def _fields(dataset: Dataset) -> dict:
    return {f.name: getattr(dataset, f.name) for f in dataclass_fields(Dataset)}


def _cache_depends(name: str, source: _Source, options: dict) -> dict:
    """What a cached source's data depends on (data.cache keys the file by it)."""
    from importlib.metadata import version

    return {"source": name, "options": {**source.options, **options}, "code": _code_digest(),
            "versions": {pkg: version(pkg) for pkg in ("numpy", "torch", *source.cache)}}


@functools.cache
def _code_digest() -> str:
    """The generators' code: this file, the constants it uses and MNIST-1D's vectorized generator
    (any edit misses the cache)."""
    digest = hashlib.sha256()
    for path in (Path(__file__), Path(constants.__file__), Path(__file__).with_name("mnist1d_fast.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _train_subset(dataset: Dataset, n_train: int, seed: int) -> Dataset:
    available = dataset.x_train.shape[0]
    if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1:
        raise DataError(f"data.n_train: must be a positive integer or null (all points), got {n_train!r}")
    if n_train > available:
        raise DataError(
            f"data.n_train: {n_train} exceeds the {available} training points of {dataset.name}; "
            f"choose at most {available} or null"
        )
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(available, generator=generator)[:n_train].sort().values  # [n_train]
    return replace(dataset, x_train=dataset.x_train[keep], y_train=dataset.y_train[keep])


# ---------------------------------------------------------------------------------------------
# option checks: one-line DataErrors naming data.<option>


def _int_option(key: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DataError(f"data.{key}: must be an integer >= {minimum}, got {value!r}")
    return value


def _float_option(key: str, value, low: float, high: float | None = None, open_low: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and (high is None or value < high)
    if not ok:
        allowed = f"{'(' if open_low else '['}{low}, {high if high is not None else 'inf'})"
        raise DataError(f"data.{key}: must be a number in {allowed}, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# image datasets on disk


def _image_dataset(name, x_train, y_train, x_test, y_test, mean, std, classes) -> Dataset:
    """uint8 [N, C, H, W] arrays -> normalized float32 tensors."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)  # [C, 1, 1]
    std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def normalize(x_u8) -> torch.Tensor:
        return torch.as_tensor(x_u8).to(torch.float32).div_(255.0).sub_(mean_t).div_(std_t)

    def labels(y, split) -> torch.Tensor:
        y = torch.as_tensor(np.asarray(y, dtype=np.int64))
        if y.numel() and (y.min() < 0 or y.max() >= len(classes)):
            raise DataError(
                f"data.root: the {name} {split} labels run from {int(y.min())} to {int(y.max())}, "
                f"outside 0..{len(classes) - 1}; the files are corrupt or of another dataset"
            )
        return y

    x_train, x_test = normalize(x_train), normalize(x_test)
    return Dataset(
        name=name, x_train=x_train, y_train=labels(y_train, "train"), x_test=x_test,
        y_test=labels(y_test, "test"), num_classes=len(classes), class_names=tuple(classes),
        in_shape=tuple(x_train.shape[1:]), mean=tuple(mean), std=tuple(std), is_image=True,
    )


def _ensure_files(root: Path, files: list[Path], download: bool, title: str, expected: str,
                  fetch: Callable[[], None]) -> None:
    """Download with torchvision when asked; otherwise a DataError naming data.root."""
    if all(f.is_file() for f in files):
        return
    if download:
        try:
            fetch()
        except Exception as err:  # network, disk, checksum: any failure is reported on one line
            message = " ".join(str(err).split()) or type(err).__name__
            raise DataError(f"data.download: could not download {title} into {root}: {message}") from err
        if all(f.is_file() for f in files):
            return
    raise DataError(
        f"data.root: {root} does not hold the {title} files (expected {expected}); "
        "set data.download=true or point data.root at them"
    )


def _read_failure(title: str, path: Path, err: Exception) -> DataError:
    message = " ".join(str(err).split()) or type(err).__name__
    return DataError(f"data.root: {path} is not a readable {title} file ({message})")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a CIFAR batch file cannot run code."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only arrays and plain containers)")


def _read_cifar_batches(paths: list[Path], label_key: str, title: str) -> tuple[np.ndarray, np.ndarray]:
    """The python-pickle CIFAR batches: dicts with 'data' uint8 [n, 3072] and labels (torchvision's
    cifar.py logic; keys may be str or bytes depending on the pickling Python)."""
    images, labels = [], []
    for path in paths:
        try:
            with open(path, "rb") as f:
                entry = _ArrayUnpickler(f, encoding="latin1").load()
            entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(entry[label_key], dtype=np.int64).reshape(-1))
        except Exception as err:
            raise _read_failure(title, path, err) from err
        if len(images[-1]) != len(labels[-1]):
            raise DataError(f"data.root: {path} holds {len(images[-1])} images but {len(labels[-1])} labels")
    return np.concatenate(images), np.concatenate(labels)


def _normalization(name: str, normalize) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the CIFAR source `name` for its `normalize` option (constants.CIFAR_NORMALIZATIONS)."""
    choices = constants.CIFAR_NORMALIZATIONS[name]
    if not isinstance(normalize, str) or normalize not in choices:
        raise DataError(f"data.normalize: {normalize!r} is not a normalization of {name}; "
                        f"choose one of {', '.join(choices)}")
    return choices[normalize]


def _cifar(root: Path, download: bool, *, name, folder, train_files, test_files, label_key,
           expected, title, tv_class, normalize, classes) -> Dataset:
    mean, std = _normalization(name, normalize)
    base = root / folder
    paths = [base / f for f in train_files + test_files]

    def fetch():
        tv_class(str(root), train=True, download=True)  # one archive holds both splits

    _ensure_files(root, paths, download, title, f"{base}/{expected}", fetch)
    x_train, y_train = _read_cifar_batches(paths[: len(train_files)], label_key, title)
    x_test, y_test = _read_cifar_batches(paths[len(train_files):], label_key, title)
    return _image_dataset(name, x_train, y_train, x_test, y_test, mean, std, classes)


@register_source
def cifar10(root: Path, download: bool, *, normalize: str = "train_split") -> Dataset:
    """CIFAR-10; `normalize`: train_split (the train split's per-channel mean and std) or
    pytorch_cifar (kuangliu/pytorch-cifar's constants, as dbViz and Li et al. 2025 use)."""
    import torchvision

    return _cifar(
        root, download, name="cifar10", folder="cifar-10-batches-py",
        train_files=[f"data_batch_{i}" for i in range(1, 6)], test_files=["test_batch"],
        label_key="labels", expected="data_batch_1..5, test_batch", title="CIFAR-10",
        tv_class=torchvision.datasets.CIFAR10, normalize=normalize, classes=constants.CIFAR10_CLASSES,
    )


@register_source
def cifar100(root: Path, download: bool, *, normalize: str = "train_split") -> Dataset:
    """CIFAR-100 (fine labels); `normalize` as for cifar10 (pytorch_cifar: the same CIFAR-10 constants)."""
    import torchvision

    return _cifar(
        root, download, name="cifar100", folder="cifar-100-python", train_files=["train"],
        test_files=["test"], label_key="fine_labels", expected="train, test", title="CIFAR-100",
        tv_class=torchvision.datasets.CIFAR100, normalize=normalize, classes=constants.CIFAR100_CLASSES,
    )


def _idx_digits(root: Path, download: bool, *, name, tv_class, title, mean, std, classes) -> Dataset:
    """MNIST-format idx files under root/<ClassName>/raw, read by torchvision's class."""
    raw = root / tv_class.__name__ / "raw"
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

    def fetch():
        tv_class(str(root), train=True, download=True)  # downloads all four files

    _ensure_files(root, [raw / s for s in stems], download, title, f"{raw}/{{{', '.join(stems)}}}", fetch)
    splits = []
    for train in (True, False):
        try:
            split = tv_class(str(root), train=train, download=False)
        except Exception as err:
            raise _read_failure(title, raw, err) from err
        splits += [split.data.unsqueeze(1), split.targets]  # [N, 1, 28, 28] uint8, [N]
    return _image_dataset(name, *splits, mean, std, classes)


@register_source
def mnist(root: Path, download: bool) -> Dataset:
    import torchvision

    return _idx_digits(root, download, name="mnist", tv_class=torchvision.datasets.MNIST, title="MNIST",
                       mean=constants.MNIST_MEAN, std=constants.MNIST_STD, classes=constants.MNIST_CLASSES)


@register_source
def fashion_mnist(root: Path, download: bool) -> Dataset:
    import torchvision

    return _idx_digits(root, download, name="fashion_mnist", tv_class=torchvision.datasets.FashionMNIST,
                       title="Fashion-MNIST", mean=constants.FASHION_MNIST_MEAN,
                       std=constants.FASHION_MNIST_STD, classes=constants.FASHION_MNIST_CLASSES)


def _read_svhn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """train_32x32.mat / test_32x32.mat: X uint8 [32, 32, 3, N], y [N, 1] with 10 for digit 0
    (torchvision's svhn.py logic)."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
        images = np.transpose(np.asarray(mat["X"], dtype=np.uint8), (3, 2, 0, 1))  # [N, 3, 32, 32]
        labels = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    except Exception as err:
        raise _read_failure("SVHN", path, err) from err
    if images.shape[1:] != (3, 32, 32) or len(images) != len(labels):
        raise DataError(f"data.root: {path} holds X {images.shape} and y {labels.shape}, not [32,32,3,N] and [N,1]")
    return images, np.where(labels == 10, 0, labels)


@register_source
def svhn(root: Path, download: bool) -> Dataset:
    import torchvision

    paths = [root / "train_32x32.mat", root / "test_32x32.mat"]

    def fetch():
        for split in ("train", "test"):
            torchvision.datasets.SVHN(str(root), split=split, download=True)

    _ensure_files(root, paths, download, "SVHN", f"{root}/train_32x32.mat, test_32x32.mat", fetch)
    (x_train, y_train), (x_test, y_test) = _read_svhn(paths[0]), _read_svhn(paths[1])
    return _image_dataset("svhn", x_train, y_train, x_test, y_test, constants.SVHN_MEAN,
                          constants.SVHN_STD, constants.SVHN_CLASSES)


# ---------------------------------------------------------------------------------------------
# offline sources: never download


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class, round(test_fraction * n_class) points to test, chosen by `seed`."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test.append(members[: int(math.floor(test_fraction * len(members) + 0.5))])
    is_test = np.zeros(len(y), dtype=bool)
    is_test[np.concatenate(test)] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


@register_source(cache=("scikit-learn",))
def digits(*, test_fraction: float = 0.3, split_seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (1797 images, bundled): [1, 8, 8] inputs, pixel/16, standardized
    with the train split's pixel mean and std; a stratified train/test split from `split_seed`."""
    from sklearn.datasets import load_digits

    test_fraction = _float_option("test_fraction", test_fraction, 0.0, 1.0, open_low=True)
    split_seed = _int_option("split_seed", split_seed, 0)
    bunch = load_digits()
    x = torch.as_tensor(bunch.images / 16.0, dtype=torch.float32).unsqueeze(1)  # [1797, 1, 8, 8]
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    train, test = _stratified_split(bunch.target, test_fraction, split_seed)
    if len(train) == 0 or len(test) == 0:
        raise DataError(f"data.test_fraction: {test_fraction} leaves an empty split; choose a value in (0.01, 0.99)")
    mean, std = x[train].mean().item(), x[train].std().item()
    x = (x - mean) / std
    return Dataset(
        name="digits", x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test], num_classes=10,
        class_names=constants.DIGIT_NAMES, in_shape=(1, 8, 8), mean=(mean,), std=(std,), is_image=True,
    )


@contextlib.contextmanager
def _global_rng_preserved():
    """mnist1d's generator seeds and draws from the global `random` and `np.random` states;
    put them back afterwards so loading it changes nothing else."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@register_source(cache=("mnist1d", "scipy"))
def mnist1d(*, num_samples: int = 5000, train_split: float = 0.8, seed: int = 42) -> Dataset:
    """MNIST-1D as the mnist1d package's own generator makes it (its `make_dataset`, vectorized
    bit for bit in data/mnist1d_fast.py; defaults are the package's; the double-descent study of
    Greydanus uses num_samples=16000, train_split=0.25). Inputs are [40] sequences, standardized
    over the whole set as the package does."""
    from mnist1d.data import get_dataset_args

    from ddsweep.data.mnist1d_fast import make_dataset  # the package's generator, vectorized

    args = get_dataset_args()
    args.num_samples = _int_option("num_samples", num_samples, 10)
    args.train_split = _float_option("train_split", train_split, 0.0, 1.0, open_low=True)
    args.seed = _int_option("seed", seed, 0)
    total = (args.num_samples // 10) * 10  # the generator makes num_samples // 10 per class
    n_train = int(total * args.train_split)
    if n_train == 0 or n_train == total:
        raise DataError(
            f"data.train_split: {train_split} leaves the train or test split of {total} samples empty; "
            "choose a fraction that keeps at least one sample on each side"
        )
    with _global_rng_preserved():
        generated = make_dataset(args)
    x_train = torch.as_tensor(generated["x"], dtype=torch.float32)  # [n_train, 40]
    return Dataset(
        name="mnist1d", x_train=x_train, y_train=torch.as_tensor(generated["y"], dtype=torch.int64),
        x_test=torch.as_tensor(generated["x_test"], dtype=torch.float32),
        y_test=torch.as_tensor(generated["y_test"], dtype=torch.int64), num_classes=10,
        class_names=constants.DIGIT_NAMES, in_shape=tuple(x_train.shape[1:]), mean=None, std=None,
        is_image=False,
    )


def _synthetic(name: str, x_train, y_train, x_test, y_test, classes: int) -> Dataset:
    x_train = torch.as_tensor(x_train, dtype=torch.float32)
    return Dataset(
        name=name, x_train=x_train, y_train=torch.as_tensor(y_train, dtype=torch.int64),
        x_test=torch.as_tensor(x_test, dtype=torch.float32), y_test=torch.as_tensor(y_test, dtype=torch.int64),
        num_classes=classes, class_names=tuple(f"class {c}" for c in range(classes)),
        in_shape=tuple(x_train.shape[1:]), mean=None, std=None, is_image=False,
    )


def _balanced_labels(n: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    """n labels, each class n // classes or one more times, in random order."""
    return rng.permutation(np.arange(n) % classes)


def gaussian_means(dim: int, classes: int, separation: float, seed: int) -> np.ndarray:
    """[classes, dim] class means of the `gaussians` source: the vertices of a regular simplex
    with edge `separation`, randomly rotated into R^dim by `seed` (so every pair of classes is
    equally hard: with unit noise, two classes alone have Bayes error Phi(-separation/2))."""
    rng = np.random.default_rng(seed)
    centered = np.eye(classes) - 1.0 / classes  # rows: K points, pairwise distance sqrt(2), rank K-1
    _, _, vt = np.linalg.svd(centered)
    coords = centered @ vt[: classes - 1].T  # [K, K-1], same distances
    basis, _ = np.linalg.qr(rng.standard_normal((dim, classes - 1)))  # [dim, K-1] orthonormal columns
    return coords @ basis.T * (separation / math.sqrt(2.0))  # [K, dim]


def bayes_predict(x: torch.Tensor, means: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Bayes rule of the `gaussians` source (equal priors, shared isotropic covariance): the
    nearest class mean. x [N, dim] -> [N] int64."""
    means = torch.as_tensor(means, dtype=x.dtype, device=x.device)
    return torch.cdist(x, means).argmin(dim=1)


@register_source(cache=())
def gaussians(*, dim: int = 2, classes: int = 3, train_size: int = 1000, test_size: int = 1000,
              separation: float = 3.0, seed: int = 0) -> Dataset:
    """K Gaussian classes with identity covariance around `gaussian_means(dim, classes,
    separation, seed)`; balanced labels. The Bayes rule is `bayes_predict` (linear)."""
    dim, classes = _int_option("dim", dim, 1), _int_option("classes", classes, 2)
    if classes > dim + 1:
        raise DataError(
            f"data.classes: {classes} equidistant class means need dim >= {classes - 1}, got data.dim={dim}; "
            "raise data.dim or lower data.classes"
        )
    sizes = _int_option("train_size", train_size, 1), _int_option("test_size", test_size, 1)
    separation = _float_option("separation", separation, 0.0)
    seed = _int_option("seed", seed, 0)
    means = gaussian_means(dim, classes, separation, seed)
    rng = np.random.default_rng([seed, 1])  # a stream apart from the means'
    splits = []
    for n in sizes:
        y = _balanced_labels(n, classes, rng)
        splits += [means[y] + rng.standard_normal((n, dim)), y]
    return _synthetic("gaussians", *splits, classes)


@register_source(cache=())
def moons(*, train_size: int = 1000, test_size: int = 1000, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Two interleaving half circles (scikit-learn's make_moons geometry) with the angle drawn
    uniformly and Gaussian noise of std `noise`; balanced labels."""
    sizes = _int_option("train_size", train_size, 1), _int_option("test_size", test_size, 1)
    noise = _float_option("noise", noise, 0.0)
    rng = np.random.default_rng(_int_option("seed", seed, 0))
    splits = []
    for n in sizes:
        y = _balanced_labels(n, 2, rng)
        angle = rng.uniform(0.0, math.pi, n)
        upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)  # [n, 2]
        lower = np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
        x = np.where(y[:, None] == 0, upper, lower) + noise * rng.standard_normal((n, 2))
        splits += [x, y]
    return _synthetic("moons", *splits, 2)


@register_source(cache=())
def spirals(*, classes: int = 2, train_size: int = 1000, test_size: int = 1000, noise: float = 0.05,
            turns: float = 1.0, seed: int = 0) -> Dataset:
    """`classes` interleaved Archimedean spiral arms: radius t ~ U(0, 1), angle
    2*pi*(turns*t + k/classes) for arm k, Gaussian noise of std `noise`; balanced labels."""
    classes = _int_option("classes", classes, 2)
    sizes = _int_option("train_size", train_size, 1), _int_option("test_size", test_size, 1)
    noise = _float_option("noise", noise, 0.0)
    turns = _float_option("turns", turns, 0.0, open_low=True)
    rng = np.random.default_rng(_int_option("seed", seed, 0))
    splits = []
    for n in sizes:
        y = _balanced_labels(n, classes, rng)
        radius = rng.uniform(0.0, 1.0, n)
        angle = 2.0 * math.pi * (turns * radius + y / classes)
        x = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # [n, 2]
        splits += [x + noise * rng.standard_normal((n, 2)), y]
    return _synthetic("spirals", *splits, classes)
