import pytest
import torch

from ddsweep.errors import ConfigError
from ddsweep.pipeline.measure.planes import degenerate_mask
from ddsweep.pipeline.measure.triplets import (
    FAMILIES,
    FamilyUnavailableError,
    available_families,
    check_family,
    draw_pairs,
    draw_triplets,
)

N, N_TEST, C = 80, 40, 4


def make_data(noise=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 2, 3, generator=g)
    y_clean = torch.arange(N) % C
    y_noisy = y_clean.clone()
    changed = torch.zeros(N, dtype=torch.bool)
    if noise:
        idx = torch.randperm(N, generator=g)[:12]
        y_noisy[idx] = (y_clean[idx] + 1 + torch.randint(0, C - 1, (12,), generator=g)) % C
        changed[idx] = True
    x_test = torch.randn(N_TEST, 2, 3, generator=g)
    y_test = torch.arange(N_TEST) % C
    return dict(y_noisy=y_noisy, y_clean=y_clean, changed=changed, x=x, y_test=y_test,
                x_test=x_test)


def draw(family, n=200, seed=0, data=None):
    data = data or make_data()
    return draw_triplets(family, n, generator=torch.Generator().manual_seed(seed), **data), data


def distinct_rows(idx):
    return bool(torch.all((idx[:, 0] != idx[:, 1]) & (idx[:, 0] != idx[:, 2])
                          & (idx[:, 1] != idx[:, 2])))


def test_train_and_test_families():
    idx, d = draw("train")
    assert idx.shape == (200, 3) and idx.dtype == torch.int64
    assert distinct_rows(idx) and idx.min() >= 0 and idx.max() < N
    assert len(idx.unique()) > N // 2  # spread over the data
    idx, d = draw("test")
    assert distinct_rows(idx) and idx.max() < N_TEST
    assert not degenerate_mask(d["x_test"][idx]).any()


def test_test_distinct_has_three_classes():
    idx, d = draw("test_distinct")
    y = d["y_test"][idx]
    assert torch.all((y[:, 0] != y[:, 1]) & (y[:, 0] != y[:, 2]) & (y[:, 1] != y[:, 2]))
    assert len(torch.unique(y)) == C


def test_clean_class_family():
    idx, d = draw("clean_class")
    assert distinct_rows(idx)
    assert not d["changed"][idx].any()
    y = d["y_noisy"][idx]
    assert torch.all(y == y[:, :1]) and torch.all(d["y_clean"][idx] == y)


def test_mislabeled_family_structure():
    idx, d = draw("mislabeled")
    assert distinct_rows(idx)
    changed, y_noisy, y_clean = d["changed"], d["y_noisy"], d["y_clean"]
    assert not changed[idx[:, :2]].any() and changed[idx[:, 2]].all()
    c = y_noisy[idx[:, 0]]
    assert torch.all(y_noisy[idx[:, 1]] == c) and torch.all(y_clean[idx[:, :2]] == c[:, None])
    assert torch.all(y_clean[idx[:, 2]] == c)  # the mislabeled point's TRUE class is c
    assert torch.all(y_noisy[idx[:, 2]] != c)
    assert len(idx[:, 2].unique()) == int(changed.sum())  # every mislabeled point gets used


def test_same_seed_same_triplets_and_different_seed_differs():
    for family in FAMILIES:
        a, _ = draw(family, n=20, seed=5)
        b, _ = draw(family, n=20, seed=5)
        c, _ = draw(family, n=20, seed=6)
        assert torch.equal(a, b) and not torch.equal(a, c), family


def test_degenerate_triplets_are_redrawn():
    d = make_data()
    g = torch.Generator().manual_seed(0)
    base = torch.randn(5, 2, 3, generator=g)
    d["x"] = base[torch.arange(N) % 5]  # only 5 distinct inputs: many repeated triplets
    d["x"][7] = 2 * d["x"][2] - d["x"][0]  # and a collinear point
    idx, _ = draw("train", n=300, data=d)
    assert not degenerate_mask(d["x"][idx]).any()
    for row in idx[:50].tolist():
        assert len({tuple(d["x"][i].flatten().tolist()) for i in row}) == 3


def test_all_identical_inputs_raise_clearly():
    d = make_data()
    d["x"] = torch.zeros(N, 2, 3)
    with pytest.raises(ValueError, match="could not draw 10 'train' triplets"):
        draw_triplets("train", 10, generator=torch.Generator().manual_seed(0), max_tries=5, **d)


def test_mislabeled_without_noise_is_a_config_error():
    d = make_data(noise=False)
    with pytest.raises(FamilyUnavailableError) as err:
        draw("mislabeled", data=d)
    msg = str(err.value)
    assert msg == "planes.families: 'mislabeled' needs label noise (data.noise.rate > 0)"
    assert isinstance(err.value, ValueError) and isinstance(err.value, ConfigError)
    assert available_families(y_noisy=d["y_noisy"], y_clean=d["y_clean"], changed=d["changed"],
                              y_test=d["y_test"]) == ["train", "test", "test_distinct",
                                                      "clean_class"]
    full = make_data()
    assert available_families(y_noisy=full["y_noisy"], y_clean=full["y_clean"],
                              y_test=full["y_test"]) == list(FAMILIES)


def test_other_unavailable_families():
    with pytest.raises(FamilyUnavailableError, match="'test_distinct' needs test labels"):
        check_family("test_distinct", y_test=torch.tensor([0, 1, 0, 1]))
    with pytest.raises(FamilyUnavailableError, match="not a triplet family"):
        check_family("bogus")
    with pytest.raises(FamilyUnavailableError, match="'clean_class' needs a class"):
        check_family("clean_class", y_noisy=torch.tensor([0, 0, 1, 1]))


def test_pairs_distinct_and_non_identical():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, generator=g)[torch.arange(30) % 4]  # heavy duplication
    idx = draw_pairs(200, generator=torch.Generator().manual_seed(0), n_points=30, x=x)
    assert idx.shape == (200, 2) and torch.all(idx[:, 0] != idx[:, 1])
    assert torch.all((x[idx[:, 0]] - x[idx[:, 1]]).flatten(1).norm(dim=1) > 0)
    again = draw_pairs(200, generator=torch.Generator().manual_seed(0), n_points=30, x=x)
    assert torch.equal(idx, again)
    with pytest.raises(ValueError):
        draw_pairs(3, generator=torch.Generator(), n_points=1)


def test_small_groups_sample_all_orders():
    # exactly 3 clean points of one class: every row is a permutation of them
    y = torch.tensor([0, 0, 0, 1, 1])
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    idx = draw_triplets("clean_class", 300, generator=torch.Generator().manual_seed(1),
                        y_noisy=y, y_clean=y, x=x)
    assert torch.all(idx.sort(dim=1).values == torch.tensor([0, 1, 2]))
    assert len({tuple(r) for r in idx.tolist()}) == 6
