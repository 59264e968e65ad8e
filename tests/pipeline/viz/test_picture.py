import numpy as np
import pytest

from ddsweep.pipeline.viz.picture import (
    ANCHOR_LABEL,
    DISAGREE_COLOR,
    DISAGREE_LABEL,
    LEGEND_MARKER_COLOR,
    MISLABELED_LABEL,
    LegendEntry,
    class_colors,
    describe_plane,
    plane_extent,
)

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
ANCHORS = [[0.1, 0.2], [0.9, 0.2], [0.5, 0.8]]
U = V = np.linspace(0, 1, 4)


def hex_rgba(code: str) -> tuple:
    return tuple(int(code[k:k + 2], 16) / 255 for k in (1, 3, 5)) + (1.0,)


def test_class_colours_are_tab10_tab20_then_distinct_turbo():
    np.testing.assert_allclose(class_colors(10)[[0, 3, 9]], [hex_rgba("#1f77b4"), hex_rgba("#d62728"),
                                                            hex_rgba("#17becf")], atol=1e-6)
    np.testing.assert_allclose(class_colors(20)[1], hex_rgba("#aec7e8"), atol=1e-6)
    colors = class_colors(100)
    assert colors.shape == (100, 4) and len({tuple(np.round(c, 4)) for c in colors}) == 100


def test_colours_per_class_anchor_and_train_point():
    pic = describe_plane(np.zeros((4, 4), int), U, V, ANCHORS, class_names=NAMES, anchor_labels=[3, 3, 5],
                         num_classes=10, train_points=(np.array([[0.5, 0.5], [0.2, 0.7]]), np.array([9, 0])))
    np.testing.assert_array_equal(pic.colors, class_colors(10))
    assert [a.color for a in pic.anchors] == [tuple(class_colors(10)[c]) for c in (3, 3, 5)]
    np.testing.assert_array_equal(pic.point_colors, class_colors(10)[[9, 0]])
    np.testing.assert_array_equal(pic.points, [[0.5, 0.5], [0.2, 0.7]])


def test_legend_lists_map_and_anchor_classes_then_markers():
    label_map = np.zeros((4, 4), int)
    label_map[2:] = 1
    label_map[0, 0] = -1  # off the map: no legend entry
    colors = class_colors(10)
    pic = describe_plane(label_map, U, V, ANCHORS, class_names=None, anchor_labels=[1, 1, 3],
                         anchor_true_labels=[1, 1, 4], num_classes=10)
    assert pic.legend == (*(LegendEntry("patch", str(c), tuple(colors[c])) for c in (0, 1, 3, 4)),
                          LegendEntry("circle", ANCHOR_LABEL, LEGEND_MARKER_COLOR))
    mis = describe_plane(label_map, U, V, ANCHORS, class_names=NAMES, anchor_labels=[1, 1, 3],
                         anchor_mislabeled=[False, False, True], num_classes=10)
    assert [(e.kind, e.label) for e in mis.legend] == [
        ("patch", "airplane"), ("patch", "automobile"), ("patch", "cat"), ("circle", ANCHOR_LABEL),
        ("star", MISLABELED_LABEL)]
    seeds = describe_plane(np.stack([label_map, label_map]), U, V, np.zeros((0, 2)), class_names=NAMES,
                           anchor_labels=[], num_classes=10)
    assert [(e.kind, e.label) for e in seeds.legend] == [
        ("patch", "airplane"), ("patch", "automobile"), ("hatch", DISAGREE_LABEL)]
    assert seeds.legend[-1].color == DISAGREE_COLOR


def test_anchor_texts_markers_and_mislabeled_flags():
    pic = describe_plane(np.zeros((4, 4), int), U, V, ANCHORS, class_names=NAMES, anchor_labels=[3, 3, 3],
                         anchor_true_labels=[3, 5, 3], anchor_mislabeled=[False, True, True], num_classes=10)
    assert [a.text for a in pic.anchors] == ["x1: cat", "x2: cat (true: dog)", "x3: cat (true: cat)"]
    assert [a.mislabeled for a in pic.anchors] == [False, True, True]
    assert [a.marker for a in pic.anchors] == ["circle", "star", "star"]
    np.testing.assert_array_equal(pic.anchor_xy, ANCHORS)
    # A true class that differs without the mislabeled flag (test anchors) is named, drawn as a circle.
    test = describe_plane(np.zeros((4, 4), int), U, V, ANCHORS, class_names=None, anchor_labels=[1, 2, 3],
                          anchor_true_labels=[1, 2, 4], num_classes=10)
    assert [a.text for a in test.anchors] == ["x1: 1", "x2: 2", "x3: 3 (true: 4)"]
    assert [a.marker for a in test.anchors] == ["circle"] * 3


def test_disagreement_mask_and_agreement_of_hand_made_maps():
    a = np.zeros((4, 4), int)
    b, c = a.copy(), a.copy()
    b[0, 1], b[2, 3] = 1, 2  # b differs from a on 2 of 16 pixels
    c[3, 3] = 5  # c on 1, and from b on 3
    pair = describe_plane(np.stack([a, b]), U, V, ANCHORS, class_names=None, anchor_labels=[0, 0, 0],
                          num_classes=10)
    expected = np.zeros((4, 4), bool)
    expected[0, 1] = expected[2, 3] = True
    np.testing.assert_array_equal(pair.disagree, expected)
    assert pair.agreement == pytest.approx(14 / 16) and pair.seeds
    triple = describe_plane(np.stack([a, b, c]), U, V, ANCHORS, class_names=None, anchor_labels=[0, 0, 0],
                            title="k=8", num_classes=10, seed_names=["s=3", "s=4", "s=5"])
    expected[3, 3] = True
    np.testing.assert_array_equal(triple.disagree, expected)
    assert triple.agreement == pytest.approx((14 + 15 + 13) / 48)
    assert triple.title_lines == ("k=8", "plane agreement 0.875")
    assert triple.title == "k=8\nplane agreement 0.875"
    assert triple.panel_titles == ("s=3", "s=4", "s=5")
    same = describe_plane(np.stack([a, a]), U, V, ANCHORS, class_names=None, anchor_labels=[0, 0, 0],
                          num_classes=10)
    assert not same.disagree.any() and same.agreement == 1.0 and same.panel_titles == ("seed 0", "seed 1")
    assert same.title_lines == ("plane agreement 1.000",)


def test_single_plane_has_no_seed_parts_and_keeps_the_title_as_given():
    pic = describe_plane(np.zeros((4, 4), int), U, V, ANCHORS, class_names=None, anchor_labels=[0, 0, 0],
                         title="mlp w=8\nepoch 3, regions 2", num_classes=10)
    assert pic.maps.shape == (1, 4, 4) and not pic.seeds
    assert pic.disagree is None and pic.agreement is None and pic.panel_titles == ()
    assert pic.title_lines == ("mlp w=8", "epoch 3, regions 2")
    assert pic.axis_names == ("u: plane coordinate along x1→x2", "v: plane coordinate towards x3")
    assert describe_plane(np.zeros((4, 4), int), U, V, ANCHORS, class_names=None, anchor_labels=[0, 0, 0],
                          num_classes=10).title_lines == ()
    inputs = describe_plane(np.zeros((4, 4), int), U, V, np.zeros((0, 2)), class_names=None, anchor_labels=[],
                            num_classes=10)
    assert inputs.axis_names == ("input x[0]", "input x[1]") and inputs.anchors == ()
    assert inputs.points.shape == (0, 2)


def test_extent_is_the_pixel_edges():
    assert plane_extent(np.linspace(0, 9, 10), np.linspace(0, 4.5, 10)) == (-0.5, 9.5, -0.25, 4.75)
    assert plane_extent([2.0], [0.0, 1.0]) == (1.5, 2.5, -0.5, 1.5)  # one pixel spans one unit


def test_maps_are_read_only_views_of_the_caller_s_arrays():
    maps = np.zeros((2, 4, 4), int)
    pic = describe_plane(maps, U, V, ANCHORS, class_names=None, anchor_labels=[0, 0, 0], num_classes=10)
    with pytest.raises(ValueError):
        pic.maps[0, 0, 0] = 1
    maps[0, 0, 0] = 1  # the caller's array stays writable
    assert not pic.disagree.flags.writeable and not pic.colors.flags.writeable


def test_seed_names_must_match_the_seeds():
    with pytest.raises(ValueError, match="seed_names need label maps"):
        describe_plane(np.zeros((4, 4), int), U, V, ANCHORS, class_names=None, anchor_labels=[0, 0, 0],
                       num_classes=10, seed_names=["seed 0"])
    with pytest.raises(ValueError, match="1 seed names for 2 label maps"):
        describe_plane(np.zeros((2, 4, 4), int), U, V, ANCHORS, class_names=None, anchor_labels=[0, 0, 0],
                       num_classes=10, seed_names=["seed 0"])
