import pytest
import torch

from pipeline.measure.margin import geometric_steps, margin_summary, margins

D = 5


def linear_fn(w, c):
    """Two classes split by the hyperplane w·x = c (class 0 where w·x < c)."""
    def fn(x):
        s = x.reshape(x.shape[0], -1) @ w - c
        return torch.stack([-s, s], dim=-1)[None]  # [1, N, 2]
    return fn


def test_margin_is_last_grid_step_before_the_boundary():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(D, generator=g)
    w_hat = w / w.norm()
    c = 0.0
    base = torch.stack([-0.37 * w_hat, -2.2 * w_hat, -0.37 * w_hat, -0.001 * w_hat])
    toward = torch.stack([w_hat, w_hat, w_hat + 0.0, -5 * w_hat])
    # pair 2 goes along an oblique direction: distance to the boundary is 0.37/cos(θ)
    ortho = torch.randn(D, generator=g)
    ortho -= (ortho @ w_hat) * w_hat
    ortho /= ortho.norm()
    toward[2] = base[2] + (w_hat + ortho)  # θ = 45°
    steps = geometric_steps(0.01, 1.0, 25)
    m = margins(linear_fn(w, c), base, toward, steps, max_points_per_call=7)
    assert m.shape == (1, 4) and m.dtype == torch.float64
    expected_0 = steps[steps < 0.37].max()
    expected_2 = steps[steps < 0.37 * 2 ** 0.5].max()
    assert m[0, 0] == expected_0
    assert m[0, 1] == steps[-1]  # boundary beyond the grid: the largest step
    assert m[0, 2] == expected_2
    assert m[0, 3] == steps[-1]  # moving away from the boundary: never changes


def test_margin_zero_when_first_step_already_crosses():
    w = torch.zeros(D)
    w[0] = 1.0
    base = torch.zeros(1, D)
    base[0, 0] = -0.001
    toward = torch.zeros(1, D)
    toward[0, 0] = 1.0
    m = margins(linear_fn(w, 0.0), base, toward, torch.tensor([0.01, 0.1]))
    assert m.tolist() == [[0.0]]


def test_margins_reject_bad_steps_and_identical_points():
    fn = linear_fn(torch.ones(D), 0.0)
    x = torch.zeros(1, D)
    with pytest.raises(ValueError):
        margins(fn, x, x + 1, torch.tensor([0.1, 0.05]))
    with pytest.raises(ValueError):
        margins(fn, x, x + 1, torch.tensor([0.0, 0.1]))
    with pytest.raises(ValueError):
        margins(fn, x, x, torch.tensor([0.1]))


def test_margin_summary_split_by_mislabeled():
    m = torch.tensor([[1.0, 2.0, 3.0, 10.0], [0.0, 0.0, 1.0, 1.0]])
    changed = torch.tensor([False, False, True, True])
    s = margin_summary(m, changed)
    assert s["clean/mean"].tolist() == [1.5, 0.0]
    assert s["clean/median"].tolist() == [1.5, 0.0]
    assert s["mislabeled/mean"].tolist() == [6.5, 1.0]
    assert s["mislabeled/median"].tolist() == [6.5, 1.0]
    clean_only = margin_summary(m, torch.zeros(4, dtype=torch.bool))
    assert set(clean_only) == {"clean/mean", "clean/median"}
    assert clean_only["clean/median"].tolist() == [2.5, 0.5]


def test_geometric_steps():
    s = geometric_steps(0.01, 10.0, 4)
    torch.testing.assert_close(s, torch.tensor([0.01, 0.1, 1.0, 10.0], dtype=torch.float64))
    with pytest.raises(ValueError):
        geometric_steps(0.0, 1.0, 4)
