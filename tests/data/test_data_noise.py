import math

import pytest
import torch

from ddsweep.data.constants import CIFAR10_ASYMMETRIC_PAIRS, CIFAR10_CLASSES
from ddsweep.data.noise import NOISE_KINDS, apply_label_noise, symmetric_counts
from ddsweep.errors import DataError


def imbalanced_labels(sizes):
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3, 0.55])
def test_symmetric_changes_exactly_round_pn_balanced_per_class(rate):
    sizes = [50, 173, 91, 7, 300, 120, 262]  # N = 1003
    clean = imbalanced_labels(sizes)
    out = apply_label_noise(clean, 7, kind="symmetric", rate=rate, seed=3)
    total = math.floor(rate * len(clean) + 0.5)
    assert int(out.changed.sum()) == total
    per_class = torch.bincount(clean[out.changed], minlength=7)
    assert torch.equal(per_class, symmetric_counts(torch.tensor(sizes), rate))
    quota = total * torch.tensor(sizes, dtype=torch.float64) / len(clean)
    assert torch.all((per_class - quota).abs() < 1)


def test_symmetric_targets_are_uniform_over_the_other_classes():
    clean = torch.arange(20000) % 5
    out = apply_label_noise(clean, 5, kind="symmetric", rate=0.5, seed=0)
    assert torch.all(out.noisy[out.changed] != clean[out.changed])
    for c in range(5):
        targets = torch.bincount(out.noisy[out.changed & (clean == c)], minlength=5)  # 2000 flips
        assert targets[c] == 0
        others = targets[torch.arange(5) != c].float()
        # each of 4 targets ~ Binomial(2000, 1/4): mean 500, sd 19.4; 5 sd
        assert torch.all((others - 500).abs() < 100), targets


def test_uniform_is_per_sample_and_may_keep_the_label():
    clean = torch.arange(200000) % 10
    out = apply_label_noise(clean, 10, kind="uniform", rate=0.3, seed=1)
    wrong = out.changed.float().mean().item()
    expected = 0.3 * 9 / 10  # 0.27; sd of the fraction ~ 0.001
    assert abs(wrong - expected) < 0.005
    assert wrong < 0.3 - 0.02  # some replaced labels drew their own class
    assert torch.equal(out.changed, out.noisy != out.clean)


@pytest.mark.parametrize("rate", [0.1, 0.2])
def test_uniform_incorrect_changes_each_label_with_probability_p_to_another_class(rate):
    n, classes = 100000, 10
    clean = torch.arange(n) % classes
    out = apply_label_noise(clean, classes, kind="uniform_incorrect", rate=rate, seed=4)
    # every replaced label differs: the changed count is Binomial(n, p), not n * p * (C-1)/C
    changed = int(out.changed.sum())
    sd = math.sqrt(n * rate * (1 - rate))  # 95 at p = 0.1, 126 at p = 0.2
    assert abs(changed - n * rate) < 5 * sd, changed
    assert torch.equal(out.changed, out.noisy != out.clean)
    assert torch.equal(out.noisy[~out.changed], clean[~out.changed])


def test_uniform_incorrect_targets_are_uniform_over_the_other_classes():
    classes = 5
    clean = torch.arange(50000) % classes
    out = apply_label_noise(clean, classes, kind="uniform_incorrect", rate=0.4, seed=0)
    for c in range(classes):
        targets = torch.bincount(out.noisy[out.changed & (clean == c)], minlength=classes).double()
        assert targets[c] == 0
        others = targets[torch.arange(classes) != c]
        expected = others.sum() / (classes - 1)  # about 1000 each
        chi2 = ((others - expected) ** 2 / expected).sum().item()
        # chi-square with 3 degrees of freedom: P(chi2 > 16.27) = 0.001
        assert chi2 < 16.27, (c, targets)


def test_uniform_incorrect_needs_two_classes():
    with pytest.raises(DataError, match=r"^data\.noise\.kind: uniform_incorrect noise needs at least 2 classes"):
        apply_label_noise(torch.zeros(10, dtype=torch.int64), 1, kind="uniform_incorrect", rate=0.1, seed=0)


def test_asymmetric_flips_follow_the_map_simultaneously():
    clean = torch.arange(1000) % 10  # 100 per class
    out = apply_label_noise(clean, 10, kind="asymmetric", rate=0.4, seed=2)
    assert CIFAR10_ASYMMETRIC_PAIRS == {9: 1, 2: 0, 3: 5, 5: 3, 4: 7}
    cat, dog = CIFAR10_CLASSES.index("cat"), CIFAR10_CLASSES.index("dog")
    for c in range(10):
        flipped = out.changed & (clean == c)
        if c in CIFAR10_ASYMMETRIC_PAIRS:
            assert int(flipped.sum()) == 40  # exactly round(rate * n_class), none chained back
            assert torch.all(out.noisy[flipped] == CIFAR10_ASYMMETRIC_PAIRS[c])
        else:
            assert int(flipped.sum()) == 0
    # both directions of the swap, from the clean labels
    assert int(((clean == cat) & (out.noisy == dog)).sum()) == 40
    assert int(((clean == dog) & (out.noisy == cat)).sum()) == 40
    assert int((out.noisy == cat).sum()) == 100  # 60 kept cats + 40 former dogs


def test_asymmetric_custom_pairs_and_validation():
    clean = torch.arange(300) % 3
    out = apply_label_noise(clean, 3, kind="asymmetric", rate=0.5, seed=0, pairs={0: 1})
    assert int(out.changed.sum()) == 50 and torch.all(clean[out.changed] == 0)
    with pytest.raises(DataError, match=r"^data\.noise\.pairs: .*3 classes"):
        apply_label_noise(clean, 3, kind="asymmetric", rate=0.5, seed=0)
    for bad in ({0: 0}, {0: 3}, {-1: 2}):
        with pytest.raises(DataError, match=r"^data\.noise\.pairs: "):
            apply_label_noise(clean, 3, kind="asymmetric", rate=0.5, seed=0, pairs=bad)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_clean_recoverable_and_seeded(kind):
    clean = torch.arange(2000) % 10
    a = apply_label_noise(clean, 10, kind=kind, rate=0.3, seed=7)
    torch.manual_seed(123)  # the global RNG must not matter
    b = apply_label_noise(clean, 10, kind=kind, rate=0.3, seed=7)
    c = apply_label_noise(clean, 10, kind=kind, rate=0.3, seed=8)
    assert torch.equal(a.noisy[~a.changed], clean[~a.changed])
    assert torch.equal(a.clean, clean) and a.noisy.dtype == torch.int64 and a.changed.dtype == torch.bool
    assert torch.equal(a.noisy, b.noisy)
    assert not torch.equal(a.noisy, c.noisy)
    zero = apply_label_noise(clean, 10, kind=kind, rate=0.0, seed=7)
    assert torch.equal(zero.noisy, clean) and not zero.changed.any()


@pytest.mark.parametrize("rate", [1.0, 1.2, -0.1, True, float("nan"), "0.1"])
def test_bad_rate_rejected(rate):
    with pytest.raises(DataError, match=r"^data\.noise\.rate: must be in \[0, 1\), got"):
        apply_label_noise(torch.zeros(10, dtype=torch.int64), 10, kind="symmetric", rate=rate, seed=0)


def test_bad_kind_rejected():
    with pytest.raises(DataError, match=r"^data\.noise\.kind: 'pairwise' .*symmetric, uniform, uniform_incorrect, asymmetric$"):
        apply_label_noise(torch.zeros(10, dtype=torch.int64), 10, kind="pairwise", rate=0.1, seed=0)
