import pytest
import torch

from ddsweep.pipeline.measure.margin import (dbviz_average, dbviz_steps, direction_margins, draw_directions,
                                     geometric_steps, margin_summary, margins)

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


def _unit(v):
    return v / v.norm()


def test_direction_margins_are_the_analytic_crossing_distances_on_the_grid():
    """Linear boundary w·x = 0 and a base point at distance d on the negative side: along a unit
    direction u with cos θ = ŵ·u > 0 the label changes at distance d / cos θ; with cos θ ≤ 0 never."""
    g = torch.Generator().manual_seed(1)
    w_hat = _unit(torch.randn(D, generator=g))
    ortho = torch.randn(D, generator=g)
    ortho = _unit(ortho - (ortho @ w_hat) * w_hat)
    d = 0.37
    base = (-d * w_hat)[None]  # [1, D]
    angles = torch.tensor([0.0, 0.3, 1.0, 1.2, 2.0, 3.0])  # radians; the last two point away
    dirs = torch.stack([torch.cos(a) * w_hat + torch.sin(a) * ortho for a in angles])  # [6, D]
    toward = base[:, None] + 2.5 * dirs[None]  # [1, 6, D]: any length, only the direction counts
    steps = dbviz_steps()
    m = direction_margins(linear_fn(w_hat, 0.0), base, toward, steps, max_points_per_call=97)
    assert m.shape == (1, 1, 6) and m.dtype == torch.float64
    for j, a in enumerate(angles.tolist()):
        cos = torch.cos(torch.tensor(a, dtype=torch.float64)).item()
        if cos > 0 and d / cos < steps[-1]:
            assert m[0, 0, j] == steps[steps < d / cos].max(), (a, m[0, 0, j])
        else:
            assert m[0, 0, j].isnan(), a
    same = direction_margins(linear_fn(w_hat, 0.0), base, base[:, None], steps)  # no direction at all
    assert same.isnan().all()


def test_dbviz_average_keeps_the_first_crossing_directions_and_drops_sparse_points():
    nan = float("nan")
    crossings = torch.tensor([[
        [1.0, nan, 2.0, 3.0, 10.0],  # first 3 crossing: 1, 2, 3 -> 2
        [nan, nan, nan, nan, 4.0],  # 1 crossing < 3 // 2 = 1? no: 1 >= 1 -> kept, mean 4
        [nan, nan, nan, nan, nan],  # none: dropped
    ]], dtype=torch.float64)
    out = dbviz_average(crossings, directions=3)
    assert out.shape == (1, 3)
    assert out[0, 0] == 2.0 and out[0, 1] == 4.0 and out[0, 2].isnan()
    strict = dbviz_average(crossings, directions=4)  # needs 2 crossings: the second point goes
    assert strict[0, 0] == 4.0 and strict[0, 1].isnan() and strict[0, 2].isnan()


def test_dbviz_margin_of_a_linear_classifier_end_to_end():
    """Every candidate direction crosses at the analytic distance; the margin is their grid mean."""
    g = torch.Generator().manual_seed(2)
    w_hat = _unit(torch.randn(D, generator=g))
    base = torch.stack([-0.5 * w_hat, 0.8 * w_hat])  # [2, D]: both sides of the boundary
    toward = torch.stack([-base[0] * 3, -base[1] * 3])[:, None].repeat(1, 4, 1)  # straight across
    toward[:, 1:] += 0.1 * torch.randn(2, 3, D, generator=g)  # slightly oblique directions
    steps = dbviz_steps()
    m = dbviz_average(direction_margins(linear_fn(w_hat, 0.0), base, toward, steps), directions=2)
    for p, dist in enumerate((0.5, 0.8)):
        dirs = toward[p, :2] - base[p]  # the first two candidates cross
        cos = (dirs @ w_hat).abs() / dirs.norm(dim=1)
        expected = torch.stack([steps[steps < dist / c].max() for c in cos.double()]).mean()
        assert m[0, p].item() == pytest.approx(expected.item(), abs=1e-12)


def test_dbviz_steps_are_dd_margin_delta_counter():
    s = dbviz_steps()
    assert s.shape == (199,) and s.dtype == torch.float64
    assert s[0].item() == pytest.approx(0.01) and s[10].item() == pytest.approx(0.11)
    assert s[11].item() == pytest.approx(0.21) and s[19].item() == pytest.approx(1.01)
    assert s[50].item() == pytest.approx(16.51) and s[75].item() == pytest.approx(41.51)
    assert s[100].item() == pytest.approx(291.51) and s[-1].item() == pytest.approx(2251.51)


def test_draw_directions_never_targets_the_base_and_is_seeded():
    a = draw_directions(500, 12, n_points=7, generator=torch.Generator().manual_seed(0))
    b = draw_directions(500, 12, n_points=7, generator=torch.Generator().manual_seed(0))
    assert a.shape == (500, 13) and torch.equal(a, b)
    assert (a[:, 1:] != a[:, :1]).all() and a.min() >= 0 and a.max() < 7
    counts = torch.bincount(a[:, 1:][a[:, :1].expand(-1, 12) == 0], minlength=7)  # targets of base 0
    assert counts[0] == 0 and (counts[1:] > 0).all()


def test_margin_summary_leaves_dropped_points_out():
    nan = float("nan")
    m = torch.tensor([[1.0, nan, 3.0, 5.0]], dtype=torch.float64)
    s = margin_summary(m, torch.tensor([False, False, True, True]))
    assert s["clean/mean"].tolist() == [1.0] and s["clean/median"].tolist() == [1.0]
    assert s["mislabeled/mean"].tolist() == [4.0]


def test_margin_config_keys():
    from ddsweep.errors import ConfigError
    from ddsweep.pipeline.config import load_config

    cfg = load_config(overrides=["--margin.method=dbviz", "--margin.directions=3"])
    assert (cfg.margin.method, cfg.margin.directions) == ("dbviz", 3)
    assert (load_config().margin.method, load_config().margin.directions) == ("lower_bound", 10)
    with pytest.raises(ConfigError, match=r"^margin\.method: 'x' is not allowed; choose one of lower_bound, dbviz \(from --margin\.method=x\)$"):
        load_config(overrides=["--margin.method=x"])
    with pytest.raises(ConfigError, match=r"^margin\.directions: must be >= 1, got 0 \(from --margin\.directions=0\)$"):
        load_config(overrides=["--margin.directions=0"])
