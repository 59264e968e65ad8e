import pytest
import torch
from torch import nn

from ddsweep.pipeline.measure.evaluate import as_logits_fn
from ddsweep.pipeline.measure.planes import (
    degenerate_mask,
    is_degenerate,
    iter_plane_points,
    plane_axes,
    plane_basis,
    plane_basis_batch,
    plane_grid,
    predict_planes,
)
from ddsweep.pipeline.measure.regions import count_regions, count_regions_batch

SHAPE = (2, 3)  # a non-flat input shape, to exercise reshapes
D = 6


def labels_fn(fn, num_classes=2):
    """logits_fn [N, *SHAPE] -> [1, N, C] from a label function of the flat inputs [N, D]."""
    def logits_fn(x):
        y = fn(x.reshape(x.shape[0], -1).double())
        return nn.functional.one_hot(y.long(), num_classes).float()[None]
    return logits_fn


def unit_anchors():
    """x1 = 0, x2 = e0, x3 = e1: plane coordinates (u, v) equal input coordinates (x0, x1)."""
    a = torch.zeros(1, 3, D)
    a[0, 1, 0] = 1.0
    a[0, 2, 1] = 1.0
    return a.reshape(1, 3, *SHAPE)


def test_basis_orthonormal_and_anchor_coordinates():
    g = torch.Generator().manual_seed(0)
    anchors = torch.randn(4, 3, *SHAPE, generator=g)
    a_hat, b_hat, coords = plane_basis_batch(anchors)
    a, b = a_hat.reshape(4, -1), b_hat.reshape(4, -1)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(b.norm(dim=1), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close((a * b).sum(1), torch.zeros(4, dtype=torch.float64))
    flat = anchors.reshape(4, 3, -1).double()
    assert torch.all(coords[:, 0] == 0) and torch.all(coords[:, 1, 1] == 0)
    torch.testing.assert_close(coords[:, 1, 0], (flat[:, 1] - flat[:, 0]).norm(dim=1))
    assert torch.all(coords[:, 2, 1] > 0)
    for k in range(3):  # x_k = x1 + u_k·â + v_k·b̂
        rebuilt = flat[:, 0] + coords[:, k, :1] * a + coords[:, k, 1:] * b
        torch.testing.assert_close(rebuilt, flat[:, k])


def test_single_basis_matches_batch_and_known_coords():
    x1, x2, x3 = torch.zeros(D), torch.zeros(D), torch.zeros(D)
    x2[0], x3[0], x3[1] = 3.0, 1.0, 2.0
    a_hat, b_hat, coords = plane_basis(x1, x2, x3)
    torch.testing.assert_close(coords, torch.tensor([[0., 0.], [3., 0.], [1., 2.]],
                                                    dtype=torch.float64))
    torch.testing.assert_close(a_hat[:2], torch.tensor([1., 0.], dtype=torch.float64))
    torch.testing.assert_close(b_hat[:2], torch.tensor([0., 1.], dtype=torch.float64))


def test_grid_bounding_box_with_margin_and_point_order():
    x1, x2, x3 = torch.zeros(D), torch.zeros(D), torch.zeros(D)
    x2[0], x3[0], x3[1] = 3.0, -1.0, 2.0  # u in [-1, 3] (Lx 4), v in [0, 2] (Ly 2)
    anchors = torch.stack([x1, x2, x3])[None].reshape(1, 3, *SHAPE)
    R, r = 5, 0.25
    points, u, v = plane_grid(anchors, R, r)
    torch.testing.assert_close(u[0], torch.linspace(-2, 4, R, dtype=torch.float64))
    torch.testing.assert_close(v[0], torch.linspace(-0.5, 2.5, R, dtype=torch.float64))
    assert points.shape == (1, R * R, *SHAPE)
    flat = points.reshape(R, R, D)  # [j, i, D]
    j, i = 3, 1
    torch.testing.assert_close(flat[j, i, :2], torch.tensor([u[0, i], v[0, j]]).float())
    chunks = list(iter_plane_points(anchors, R, r, chunk_points=7))
    assert [c.shape[0] for c in chunks] == [7, 7, 7, 4]
    torch.testing.assert_close(torch.cat(chunks), points[0])


def test_plane_axes_rejects_bad_arguments():
    coords = torch.tensor([[[0., 0.], [1., 0.], [0., 1.]]], dtype=torch.float64)
    with pytest.raises(ValueError):
        plane_axes(coords, 1, 0.1)
    with pytest.raises(ValueError):
        plane_axes(coords, 10, -0.1)


def test_degenerate_triplets():
    g = torch.Generator().manual_seed(1)
    x1, x2, x3 = torch.randn(3, D, generator=g)
    assert not is_degenerate(x1, x2, x3)
    assert is_degenerate(x1, x1, x3)
    assert is_degenerate(x1, x2, x1)
    assert is_degenerate(x1, x2, x2.clone())
    assert is_degenerate(x1, x1, x1)
    assert is_degenerate(x1, x2, x1 + 2.5 * (x2 - x1))  # collinear
    assert is_degenerate(x1, x2, x1 + 2.5 * (x2 - x1) + 1e-9 * x3)  # nearly collinear
    mask = degenerate_mask(torch.stack([torch.stack([x1, x2, x3]), torch.stack([x1, x1, x3])]))
    assert mask.tolist() == [False, True]
    with pytest.raises(ValueError, match="degenerate"):
        plane_basis(x1, x1, x3)


def test_label_map_convention_rows_are_v_columns_are_u():
    fn = labels_fn(lambda x: x[:, 0] > 0.5)  # depends on u only
    labels = predict_planes(fn, unit_anchors(), resolution=10, margin=0.0)
    assert labels.shape == (1, 1, 10, 10) and labels.dtype == torch.int64
    row = labels[0, 0, 0]
    assert torch.all(labels[0, 0] == row)  # every row (v) identical
    assert row.tolist() == [0] * 5 + [1] * 5  # columns follow u


def test_linear_model_gives_two_regions_constant_gives_one():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(D, generator=g)
    lin = nn.Linear(D, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([w, -w]))
    fn = lambda x: lin(x.reshape(x.shape[0], -1))[None]
    x1 = -w / w.norm() + torch.randn(D, generator=g) * 0.1
    x2 = w / w.norm()
    x3 = torch.randn(D, generator=g)
    anchors = torch.stack([x1, x2, x3])[None].reshape(1, 3, *SHAPE)
    labels = predict_planes(fn, anchors, resolution=50, margin=0.1)
    assert count_regions(labels[0, 0]) == 2
    const = labels_fn(lambda x: torch.zeros(x.shape[0]))
    assert count_regions(predict_planes(const, anchors, 50, 0.1)[0, 0]) == 1


@pytest.mark.parametrize("k", [3, 5, 6])
def test_stripes_give_stripe_count(k):
    # stripe m covers u in [m/k, (m+1)/k); boundaries never fall on a grid point of R=50
    fn = labels_fn(lambda x: torch.floor(k * x[:, 0] * (1 - 1e-9)).clamp(0, k - 1) % 2)
    labels = predict_planes(fn, unit_anchors(), resolution=50, margin=0.0)
    assert count_regions(labels[0, 0]) == k


@pytest.mark.parametrize("m", [1, 3, 4])
def test_islands_in_a_sea(m):
    centers = torch.tensor([[0.2, 0.2], [0.75, 0.25], [0.25, 0.75], [0.7, 0.7]])[:m]

    def island(x):
        d = (x[:, None, :2] - centers[None].double()).norm(dim=-1)  # [N, m]
        return (d < 0.12).any(dim=1)

    labels = predict_planes(labels_fn(island), unit_anchors(), resolution=60, margin=0.0)
    assert count_regions(labels[0, 0]) == m + 1


def test_many_planes_per_call_and_chunking_bounded():
    g = torch.Generator().manual_seed(3)
    anchors = torch.randn(5, 3, *SHAPE, generator=g)
    w = torch.randn(D, 4, generator=g)
    seen = []

    def fn(x):
        seen.append(x.shape[0])
        return torch.stack([x.reshape(x.shape[0], -1) @ w, -(x.reshape(x.shape[0], -1) @ w)])

    big = predict_planes(fn, anchors, resolution=12, margin=0.1, max_points_per_call=10_000)
    assert seen == [5 * 144]  # all five planes in one forward call
    seen.clear()
    small = predict_planes(fn, anchors, resolution=12, margin=0.1, max_points_per_call=37)
    assert max(seen) == 37 and sum(seen) == 5 * 144
    assert big.shape == (2, 5, 12, 12)
    assert torch.equal(big, small)
    assert count_regions_batch(big).shape == (2, 5)


def test_predict_planes_with_module_and_cpu_autocast():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(start_dim=2), nn.Linear(D, 3))  # [1, N, *SHAPE] -> [1, N, 3]
    model.train()
    anchors = torch.randn(2, 3, *SHAPE)
    fn = as_logits_fn(model)
    full = predict_planes(fn, anchors, resolution=8, margin=0.1)
    amp = predict_planes(fn, anchors, resolution=8, margin=0.1, amp_dtype=torch.bfloat16)
    assert model.training
    assert full.shape == amp.shape == (1, 2, 8, 8)
    assert (full == amp).float().mean() > 0.9  # bf16 may flip near-ties only
