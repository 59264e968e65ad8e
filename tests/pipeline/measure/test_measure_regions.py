import numpy as np
import pytest
import torch
from torch import nn

from ddsweep.pipeline.measure.regions import (
    count_regions,
    count_regions_batch,
    segment_counts,
    summarize,
    triangle_counts,
    triangle_label_maps,
    triangle_mask,
)

D = 4


def labels_fn(*fns, num_classes=4):
    """logits_fn x [N, D] -> [S, N, C], one seed per label function of the inputs."""
    def logits_fn(x):
        return torch.stack([nn.functional.one_hot(f(x.double()).long(), num_classes).float()
                            for f in fns])
    return logits_fn


def test_checkerboard_uses_8_connectivity():
    board = np.indices((6, 6)).sum(0) % 2
    assert count_regions(board) == 2  # diagonal neighbours of a class merge
    blocks = np.kron(board[:3, :3], np.ones((2, 2), dtype=int))
    assert count_regions(blocks) == 2
    assert count_regions(np.array([[1, 0], [0, 1]])) == 2
    assert count_regions(np.array([[1, 0, 1]])) == 3  # no diagonal: separate components


def test_region_count_basics():
    assert count_regions(np.zeros((5, 5), dtype=int)) == 1
    assert count_regions(np.full((3, 3), -1)) == 1  # nothing on the map: still minimum 1
    stripes = np.tile(np.array([0, 0, 1, 1, 2, 2, 0, 0]), (4, 1))
    assert count_regions(stripes) == 4  # class 0 appears as two components
    assert count_regions(torch.tensor(stripes)) == 4
    masked = np.array([[0, -1, 0], [-1, -1, -1], [1, -1, 1]])
    assert count_regions(masked) == 4  # -1 pixels are not counted and do not connect


def test_count_regions_batch_shape_and_values():
    maps = torch.zeros(2, 3, 4, 4, dtype=torch.int64)
    maps[0, 1, :, 2:] = 1
    maps[1, 2, 0, 0] = 3
    maps[1, 2, 3, 3] = 3
    counts = count_regions_batch(maps)
    assert counts.dtype == torch.int64
    assert counts.tolist() == [[1, 2, 1], [1, 1, 3]]


def test_summarize():
    s = summarize(torch.tensor([[1, 2, 3, 10], [4, 4, 4, 4]]))
    assert s["mean"].tolist() == [4.0, 4.0]
    assert s["median"].tolist() == [2.5, 4.0]
    torch.testing.assert_close(s["std"], torch.tensor([np.std([1, 2, 3, 10]), 0.0],
                                                      dtype=torch.float64))
    one = summarize(torch.tensor([7]))
    assert float(one["std"]) == 0.0 and float(one["median"]) == 7.0


def test_segment_counts_known_change_points():
    thresholds = torch.tensor([0.25, 0.5, 0.8], dtype=torch.float64)
    step = lambda x: (x[:, :1] > thresholds).sum(1)  # 0,1,2,3 along x0
    parity = lambda x: (x[:, :1] > thresholds).sum(1) % 2
    xa = torch.zeros(4, D)
    xb = torch.zeros(4, D)
    xb[0, 0] = 1.0  # crosses all three
    xb[1, 0] = 0.6  # crosses 0.25, 0.5
    xa[2, 0], xb[2, 0] = 1.0, 0.1  # reversed, crosses all three
    xa[3, 0], xb[3, 0] = 0.3, 0.45  # crosses none
    xb[3, 1] = 5.0
    counts = segment_counts(labels_fn(step, parity), xa, xb, points=200, max_points_per_call=33)
    assert counts.shape == (2, 4)
    assert counts.tolist() == [[4, 3, 4, 1], [4, 3, 4, 1]]


def test_segment_counts_sees_a_thin_interval_only_with_enough_points():
    bump = lambda x: ((x[:, 0] > 0.501) & (x[:, 0] < 0.509)).long()
    xa, xb = torch.zeros(1, D), torch.zeros(1, D)
    xb[0, 0] = 1.0
    assert segment_counts(labels_fn(bump), xa, xb, points=11).tolist() == [[1]]
    assert segment_counts(labels_fn(bump), xa, xb, points=1001).tolist() == [[3]]


def test_triangle_mask():
    m = triangle_mask(4)
    assert m.tolist() == [[True, True, True, True], [True, True, True, False],
                          [True, True, False, False], [True, False, False, False]]


def triangle_anchors(T=1):
    """x1 = 0, x2 = e0, x3 = e1: α = x0, β = x1."""
    x1 = torch.zeros(T, D)
    x2 = torch.zeros(T, D)
    x3 = torch.zeros(T, D)
    x2[:, 0] = 1.0
    x3[:, 1] = 1.0
    return x1, x2, x3


def test_triangle_counts_known_answers():
    corners = lambda x: ((x[:, 0] > 0.6) | (x[:, 1] > 0.6)).long()  # two corners inside
    diagonal = lambda x: (x[:, 0] + x[:, 1] > 0.5).long()
    const = lambda x: torch.zeros(x.shape[0], dtype=torch.long)
    fn = labels_fn(corners, diagonal, const)
    x1, x2, x3 = triangle_anchors(T=2)
    counts = triangle_counts(fn, x1, x2, x3, points=41, max_points_per_call=100)
    # corners: on the full square the two corners would join through α, β > 0.6 (2 regions);
    # inside the triangle they are separate: 2 + the class-0 region = 3
    assert counts.tolist() == [[3, 3], [2, 2], [1, 1]]


def test_triangle_label_maps_never_evaluate_outside():
    seen = []

    def fn(x):
        seen.append(x.double())
        return torch.zeros(1, x.shape[0], 2)

    x1, x2, x3 = triangle_anchors()
    maps = triangle_label_maps(fn, x1, x2, x3, points=9)
    pts = torch.cat(seen)
    assert pts.shape[0] == 45  # 9*10/2 in-triangle pixels
    assert torch.all(pts[:, 0] + pts[:, 1] <= 1 + 1e-6)
    assert torch.equal(maps[0, 0] >= 0, triangle_mask(9))


def test_bad_point_counts():
    xa = torch.zeros(1, D)
    with pytest.raises(ValueError):
        segment_counts(labels_fn(lambda x: x[:, 0].long()), xa, xa + 1, points=1)
