"""MNIST-1D's generator (the mnist1d package's `make_dataset`), vectorized over samples.

The package transforms one sample at a time (pad, dilate, scale, translate, correlated and iid
noise, shear, subsample), building four scipy interpolators per sample: 16,000 samples take about
11 s. Here the random draws are made first, in the package's exact order (one pass over the samples
with the same calls on the global `np.random` state), and then every transformation runs once on
all samples at the same step with the same arithmetic, element for element: scipy's gaussian filter
on stacked rows, and `np.interp` row by row, which is what scipy's linear `interp1d` calls for
1-D data. The arrays are equal bit for bit to the package's (tests/data/test_mnist1d_fast.py
compares them).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def make_dataset(args) -> dict:
    """`mnist1d.data.make_dataset(args)`'s x, y, x_test and y_test (float64 / int64 arrays), for
    args without `shuffle_seq`. Seeds and draws from the global `random` / `np.random` states as
    the package does."""
    from mnist1d.data import get_templates
    from mnist1d.utils import set_seed

    if args.shuffle_seq:
        raise ValueError("mnist1d_fast: shuffle_seq is not supported")
    templates = get_templates()
    set_seed(args.seed)
    n_classes = len(templates["y"])
    per_class = args.num_samples // n_classes
    labels = np.repeat(np.asarray(templates["y"]), per_class)  # generation order: class by class
    n, low, high = len(labels), args.padding[0], args.padding[1]
    dilated = args.template_len + args.padding[-1]

    # the draws, in transform()'s order: pad, scale, translate, correlated noise, iid noise, shear
    pads = np.empty(n, dtype=np.int64)
    scales, shears = np.empty(n), np.empty(n)
    shifts = np.empty(n, dtype=np.int64)
    corr, iid = np.empty((n, dilated)), np.empty((n, dilated))
    for i in range(n):
        pads[i] = low + int(np.random.rand() * (high - low + 1))
        scales[i] = np.random.rand()
        shifts[i] = np.random.choice(args.max_translation)
        corr[i] = args.corr_noise_scale * np.random.randn(dilated)
        iid[i] = args.iid_noise_scale * np.random.randn(dilated)
        shears[i] = np.random.rand()

    # pad with zeros and dilate to `dilated` points
    shapes = np.asarray(templates["x"])[labels] + 1e-8  # [n, template_len]
    x = np.stack([interpolate(np.concatenate([row, np.zeros(p)]), dilated) for row, p in zip(shapes, pads)])
    x *= (1 + args.scale_coeff * (scales - 0.5))[:, None]
    x = np.stack([np.concatenate([row[-k:], row[:-k]]) for row, k in zip(x, shifts)])  # translate
    mask = x != 0
    x = mask * x + (1 - mask) * gaussian_filter1d(corr, 2, axis=1)
    x = x + iid
    x = x - (args.shear_scale * (shears - 0.5))[:, None] * np.linspace(-0.5, 0.5, dilated)
    x = np.stack([interpolate(row, args.final_seq_length) for row in x])  # [n, final_seq_length]

    order = np.random.permutation(n)
    xs, ys = np.ascontiguousarray(x)[order], labels[order]
    xs = (xs - xs.mean()) / xs.std()
    split = int(n * args.train_split)
    return {"x": xs[:split], "x_test": xs[split:], "y": ys[:split], "y_test": ys[split:]}


def interpolate(x: np.ndarray, n: int) -> np.ndarray:
    """mnist1d.transform.interpolate of a 1-D `x`: linear, from len(x) to `n` evenly spaced points on [0, 1]."""
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)
