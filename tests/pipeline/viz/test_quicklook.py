from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from ddsweep.pipeline.viz.picture import (
    ANCHOR_LABEL,
    DARKEN,
    DISAGREE_LABEL,
    MISLABELED_LABEL,
    LegendEntry,
    class_colors,
    describe_plane,
    plane_extent,
)
from ddsweep.pipeline.viz.quicklook import HATCH, Picture, draw, to_pixel

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
NO_ANCHORS = dict(class_names=NAMES, anchor_labels=[], anchor_mislabeled=[], num_classes=10)


def rgb(c, num_classes=10):
    return tuple(int(x) for x in np.round(class_colors(num_classes)[c, :3] * 255))


def render(label_maps, u, v, anchor_coords, **kw):
    """The quicklook picture of the plane's description (one map [R, R] or seeds [S, R, R])."""
    return draw(describe_plane(label_maps, u, v, anchor_coords, **kw))


def grid(R=20, u_max=1.0, v_max=1.0):
    return np.linspace(0, u_max, R), np.linspace(0, v_max, R)


def near(picture, xy, half):
    """``[2h+1, 2h+1, 3]`` pixels of the picture around image position ``xy``."""
    x, y = (int(round(c)) for c in xy)
    return np.asarray(picture.image)[y - half:y + half + 1, x - half:x + half + 1]


def centroid(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def test_bottom_row_of_the_map_is_drawn_at_the_bottom():
    u, v = grid(10)
    label_map = np.ones((10, 10), int)
    label_map[0, :] = 0  # j = 0 is the lowest v
    pic = render(label_map, u, v, np.zeros((0, 2)), **NO_ANCHORS)
    left, top, right, bottom = pic.plots[0]
    mid = (left + right) // 2
    assert pic.image.getpixel((mid, bottom - 3)) == rgb(0)
    assert pic.image.getpixel((mid, bottom - (bottom - top) // 10 - 3)) == rgb(1)
    assert pic.image.getpixel((mid, top + 3)) == rgb(1)


def test_first_column_of_the_map_is_drawn_on_the_left():
    u, v = grid(10)
    label_map = np.ones((10, 10), int)
    label_map[:, 0] = 0  # i = 0 is the lowest u
    pic = render(label_map, u, v, np.zeros((0, 2)), **NO_ANCHORS)
    left, top, right, bottom = pic.plots[0]
    mid = (top + bottom) // 2
    assert pic.image.getpixel((left + 3, mid)) == rgb(0)
    assert pic.image.getpixel((right - 3, mid)) == rgb(1)


def test_to_pixel_maps_the_pixel_edge_extent_onto_the_plot_area():
    u, v = np.linspace(0, 9, 10), np.linspace(0, 4.5, 10)  # edges: u -0.5..9.5, v -0.25..4.75
    plot = (10, 20, 110, 70)
    xy = to_pixel([[-0.5, -0.25], [9.5, 4.75], [4.5, 2.25]], plane_extent(u, v), plot)
    np.testing.assert_allclose(xy, [[10, 70], [110, 20], [60, 45]])


def test_anchors_are_drawn_at_their_plane_coordinates():
    u, v = grid(40, u_max=2.0)
    coords = np.array([[0.4, 0.3], [1.6, 0.3], [1.0, 0.8]])
    pic = render(np.zeros((40, 40), int), u, v, coords, class_names=NAMES, anchor_labels=[2, 2, 2],
                 anchor_true_labels=[2, 2, 5], anchor_mislabeled=[False, False, True], num_classes=10)
    left, top, right, bottom = pic.plots[0]
    half = 1 / 39 / 2  # half a grid step: the plot spans pixel edges
    xy = np.stack([left + (coords[:, 0] + 2 * half) / (2 + 4 * half) * (right - left),
                   bottom - (coords[:, 1] + half) / (1 + 2 * half) * (bottom - top)], axis=1)
    star = near(pic, xy[2], 14)
    red = (star[..., 0] > 230) & (star[..., 1] < 30) & (star[..., 2] < 30)
    assert red.sum() > 20
    np.testing.assert_allclose(centroid(red), [14, 14], atol=2.5)
    circle = near(pic, xy[0], 7)  # the label box starts 8 px away
    black = circle.max(axis=-1) < 40
    assert black.sum() > 20
    np.testing.assert_allclose(centroid(black), [7, 7], atol=1.5)
    assert circle[7, 7].tolist() == list(rgb(2))  # filled with the anchor's label colour
    assert not ((circle[..., 0] > 230) & (circle[..., 1] < 30)).any()  # a normal anchor has no red


def test_anchors_outside_the_plot_are_clipped():
    u, v = grid(10)
    coords = np.array([[5.0, 5.0], [-1e30, 0.5], [np.nan, 0.5]])
    pic = render(np.zeros((10, 10), int), u, v, coords, class_names=None, anchor_labels=[1, 2, 3],
                 anchor_mislabeled=[True, False, False], num_classes=10)
    assert not any(t.startswith("x") and ":" in t for t in pic.texts)


def test_texts_list_title_anchor_labels_and_only_the_classes_shown():
    u, v = grid(20)
    label_map = np.zeros((20, 20), int)
    label_map[10:] = 1
    coords = np.array([[0.2, 0.2], [0.8, 0.2], [0.5, 0.8]])
    pic = render(label_map, u, v, coords, class_names=None, anchor_labels=[1, 1, 3],
                 anchor_true_labels=[1, 1, 4], title="mlp w=8\nepoch 3, regions 2", num_classes=10)
    assert pic.texts[:2] == ("mlp w=8", "epoch 3, regions 2") and pic.title == "mlp w=8\nepoch 3, regions 2"
    assert {"x1: 1", "x2: 1", "x3: 3 (true: 4)"} <= set(pic.texts)
    assert {"0", "1", "3", "4", ANCHOR_LABEL, "u: plane coordinate along x1→x2"} <= set(pic.texts)
    assert "7" not in pic.texts and "2" not in pic.texts
    assert MISLABELED_LABEL not in pic.texts and DISAGREE_LABEL not in pic.texts
    mis = render(label_map, u, v, coords, class_names=NAMES, anchor_labels=[1, 1, 3],
                 anchor_mislabeled=[False, False, True], num_classes=10)
    assert MISLABELED_LABEL in mis.texts and "x3: cat (true: cat)" in mis.texts
    assert "horse" not in mis.texts and {"airplane", "automobile", "cat"} <= set(mis.texts)


def test_seeds_picture_reports_agreement_and_names_its_panels():
    u, v = grid(20)
    a = np.full((20, 20), 2)
    b = a.copy()
    b[:5] = 5  # 100 of 400 pixels differ
    pic = render(np.stack([a, b]), u, v, [[0.2, 0.2], [0.8, 0.2], [0.5, 0.8]], class_names=NAMES,
                 anchor_labels=[2, 2, 2], title="k=8", num_classes=10)
    assert pic.title == "k=8\nplane agreement 0.750"
    assert {"plane agreement 0.750", "seed 0", "seed 1", DISAGREE_LABEL, "dog"} <= set(pic.texts)
    assert len(pic.plots) == 2 and pic.plots[0][2] < pic.plots[1][0]
    named = render(np.stack([a, a, a]), u, v, np.zeros((0, 2)), class_names=NAMES,
                   anchor_labels=[], num_classes=10, seed_names=["s=3", "s=4", "s=5"])
    assert {"s=3", "s=4", "s=5", "plane agreement 1.000"} <= set(named.texts) and len(named.plots) == 3


def test_seeds_picture_darkens_and_hatches_exactly_where_seeds_differ():
    u, v = grid(20)
    a = np.full((20, 20), 2)
    b = a.copy()
    b[:10, :10] = 5  # seeds disagree in the bottom-left quadrant
    pic = render(np.stack([a, b]), u, v, np.zeros((0, 2)), class_names=NAMES, anchor_labels=[],
                 num_classes=10)
    for s, c in ((0, 2), (1, 5)):
        left, top, right, bottom = pic.plots[s]
        x, y = left + 20, bottom - 20
        x += (x - left + y - top) % HATCH == 0  # step off a hatch line
        dark = tuple(round(k * (1 - DARKEN)) for k in rgb(c))
        assert pic.image.getpixel((x, y)) == dark
        hatch = np.asarray(pic.image)[y - 10:y, left + 10:left + 20]
        assert (hatch.max(axis=-1) == 0).sum() > 5
        assert pic.image.getpixel((right - 20, top + 20)) == rgb(2)
        assert pic.image.getpixel((left + 20, top + 20)) == rgb(2)  # same class, seeds agree


def test_outside_pixels_are_white_and_scale_is_equal_on_both_axes():
    u, v = grid(20, u_max=2.0, v_max=1.0)
    label_map = np.zeros((20, 20), int)
    label_map[:, 10:] = -1
    pic = render(label_map, u, v, np.zeros((0, 2)), **NO_ANCHORS)
    left, top, right, bottom = pic.plots[0]
    assert (right - left) == pytest.approx(2 * (bottom - top), abs=2) and right - left == 400
    assert pic.image.getpixel((right - 5, (top + bottom) // 2)) == (255, 255, 255)
    assert pic.image.getpixel((left + 5, (top + bottom) // 2)) == rgb(0)


def test_save_writes_png_with_title_and_texts(tmp_path):
    u, v = grid(20)
    pic = render(np.zeros((20, 20), int), u, v, [[0.2, 0.2], [0.8, 0.2], [0.5, 0.8]], class_names=NAMES,
                 anchor_labels=[3, 3, 3], anchor_true_labels=[3, 3, 5], anchor_mislabeled=[0, 0, 1],
                 title="resnet18k k=8, noise 0.2\nepoch 100", num_classes=10)
    assert isinstance(pic, Picture) and pic.image.mode == "RGB"
    path = pic.save(tmp_path / "planes" / "plane.png")
    assert path == tmp_path / "planes" / "plane.png" and path.exists()
    assert not (tmp_path / "planes" / "plane.png.tmp").exists()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == pic.image.size
        assert im.text["Title"] == "resnet18k k=8, noise 0.2\nepoch 100"
        assert "x3: cat (true: dog)" in im.text["Description"].split("\n")


def test_hundred_classes_all_listed():
    R = 50
    names = [f"class_{c}" for c in range(100)]
    u, v = grid(R)
    label_map = np.arange(R * R).reshape(R, R) % 100
    pic = render(label_map, u, v, [[0.2, 0.2], [0.8, 0.2], [0.5, 0.8]], class_names=names,
                 anchor_labels=[1, 2, 3], title="cifar100", num_classes=100)
    assert set(names) <= set(pic.texts)
    seeds = render(np.stack([label_map, label_map[::-1]]), u, v, np.zeros((0, 2)),
                   class_names=None, anchor_labels=[], num_classes=100)
    assert {str(c) for c in range(100)} <= set(seeds.texts)


def test_input_plane_with_train_points():
    u, v = grid(20, u_max=4.0, v_max=4.0)
    points = np.array([[1.0, 1.0], [3.0, 2.5]])
    pic = render(np.zeros((20, 20), int), u, v, np.zeros((0, 2)), title="mlp",
                 train_points=(points, [1, 3]), **NO_ANCHORS)
    assert {"input x[0]", "input x[1]", "airplane"} <= set(pic.texts)
    assert "cat" not in pic.texts  # as plots.draw: the legend lists map and anchor classes only
    assert ANCHOR_LABEL not in pic.texts and "u: plane coordinate along x1→x2" not in pic.texts
    for (x, y), c in zip(to_pixel(points, plane_extent(u, v), pic.plots[0]), (1, 3)):
        assert pic.image.getpixel((round(x), round(y))) == rgb(c)
        ring = near(pic, (x, y), 3)
        assert (ring.max(axis=-1) == 0).any()  # thin black edge


def test_draw_takes_texts_colours_and_disagreement_from_the_description(tmp_path):
    u, v = grid(20)
    maps = np.zeros((2, 20, 20), int)
    pic = describe_plane(maps, u, v, [[0.2, 0.2], [0.8, 0.2], [0.5, 0.8]], class_names=NAMES,
                         anchor_labels=[2, 3, 5], title="k=8", num_classes=10)
    disagree = np.zeros((20, 20), bool)
    disagree[10:] = True  # the maps agree: the top half is darkened because the description says so
    colors = np.tile([0.5, 0.0, 0.5, 1.0], (10, 1))
    edited = replace(pic, title_lines=("hand-made title",), panel_titles=("left", "right"),
                     anchors=tuple(replace(a, text=f"hand {k}") for k, a in enumerate(pic.anchors)),
                     legend=(LegendEntry("patch", "zebra", (1.0, 0.0, 0.0, 1.0)),), colors=colors,
                     disagree=disagree)
    drawn = draw(edited)
    assert drawn.title == "hand-made title"
    assert {"hand-made title", "left", "right", "hand 0", "hand 1", "hand 2", "zebra"} <= set(drawn.texts)
    assert not {"k=8", "seed 0", "x1: bird", "airplane", DISAGREE_LABEL} & set(drawn.texts)
    purple = (128, 0, 128)
    for left, top, right, bottom in drawn.plots:
        assert drawn.image.getpixel((left + 3, bottom - 3)) == purple
        x, y = right - 20, top + 20
        x += (x - left + y - top) % HATCH == 0  # step off a hatch line
        assert drawn.image.getpixel((x, y)) == tuple(round(k * (1 - DARKEN)) for k in purple)
    with Image.open(drawn.save(tmp_path / "p.png")) as im:
        assert im.text["Title"] == "hand-made title" and "zebra" in im.text["Description"].split("\n")
