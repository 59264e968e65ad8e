import os
from dataclasses import replace

import numpy as np
import pytest
from matplotlib.figure import Figure

from ddsweep.pipeline.viz.picture import (
    DISAGREE_COLOR,
    DISAGREE_LABEL,
    MISLABELED_LABEL,
    LegendEntry,
    class_colors,
    describe_plane,
)
from ddsweep.pipeline.viz.plots import draw, montage, save_figure

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
R = 120


def legend_texts(fig):
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for lg in legends for t in lg.get_texts()]


def all_texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def plane_map(seed=0):
    """Three classes (bird 2, cat 3, dog 5) in wavy bands plus a few islands."""
    rng = np.random.default_rng(seed)
    u = np.linspace(-0.5, 4.5, R)
    v = np.linspace(-0.3, 3.3, R)
    U, V = np.meshgrid(u, v)  # [j, i]
    bands = np.floor((U + 0.4 * np.sin(3 * V)) / 1.6).astype(int) % 3
    label_map = np.array([2, 3, 5])[bands]
    for cx, cy in rng.uniform(0, 3, size=(4, 2)):
        label_map[(U - cx) ** 2 + (V - cy) ** 2 < 0.05] = 0
    return label_map, u, v


ANCHORS = np.array([[0.0, 0.0], [4.0, 0.0], [1.5, 3.0]])


def test_draw_plane_writes_png_with_legend(tmp_path):
    label_map, u, v = plane_map()
    fig = draw(describe_plane(label_map, u, v, ANCHORS, class_names=NAMES, anchor_labels=[3, 3, 3],
                              anchor_true_labels=[3, 3, 5], anchor_mislabeled=[False, False, True],
                              title="resnet18k k=8, noise 0.2, epoch 100, regions 9", num_classes=10,
                              train_points=(np.array([[1.0, 1.0], [2.0, 2.0]]), np.array([2, 5]))))
    assert isinstance(fig, Figure)
    texts = legend_texts(fig)
    for name in ("airplane", "bird", "cat", "dog"):  # present classes and anchor classes
        assert name in texts
    assert "truck" not in texts  # absent classes stay out of the legend
    assert MISLABELED_LABEL in texts
    assert any("cat (true: dog)" in t for t in all_texts(fig))
    assert fig.axes[0].get_title().startswith("resnet18k k=8")
    path = save_figure(fig, tmp_path / "planes" / "plane.png")
    assert path.exists() and os.path.getsize(path) > 10_000
    assert not (tmp_path / "planes" / "plane.png.tmp").exists()
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_draw_plane_without_mislabeled_anchor_has_no_mislabeled_entry():
    label_map, u, v = plane_map()
    fig = draw(describe_plane(label_map, u, v, ANCHORS, class_names=None, anchor_labels=[2, 3, 5],
                              title="t", num_classes=10))
    texts = legend_texts(fig)
    assert MISLABELED_LABEL not in texts and {"2", "3", "5"} <= set(texts)


def test_draw_plane_pair_marks_disagreement(tmp_path):
    a, u, v = plane_map(0)
    b = a.copy()
    b[:30, :30] = 9  # seeds disagree on 900 pixels
    fig = draw(describe_plane(np.stack([a, b]), u, v, ANCHORS, class_names=NAMES,
                              anchor_labels=[3, 3, 3], anchor_true_labels=[3, 3, 5],
                              anchor_mislabeled=[False, False, True], title="k=8", num_classes=10,
                              seed_names=["seed 0", "seed 1"]))
    agreement = 1 - 900 / R**2
    assert f"{agreement:.3f}" in fig._suptitle.get_text()
    assert len([ax for ax in fig.axes if ax.images]) == 2
    assert DISAGREE_LABEL in legend_texts(fig) and "truck" in legend_texts(fig)
    assert os.path.getsize(save_figure(fig, tmp_path / "pair.png")) > 10_000


def test_draw_takes_texts_colours_and_disagreement_from_the_description():
    label_map, u, v = plane_map()
    pic = describe_plane(np.stack([label_map, label_map]), u, v, ANCHORS, class_names=NAMES,
                         anchor_labels=[2, 3, 5], title="k=8", num_classes=10)
    disagree = np.zeros((R, R), bool)
    disagree[:7, :9] = True  # the maps agree: the hatched area is the description's alone
    colors = np.tile([0.5, 0.0, 0.5, 1.0], (10, 1))
    edited = replace(pic, title_lines=("hand-made title",), panel_titles=("left", "right"),
                     anchors=tuple(replace(a, text=f"hand {k}") for k, a in enumerate(pic.anchors)),
                     legend=(LegendEntry("patch", "zebra", (1.0, 0.0, 0.0, 1.0)),), colors=colors,
                     disagree=disagree)
    fig = draw(edited)
    assert fig._suptitle.get_text() == "hand-made title"
    assert [ax.get_title() for ax in fig.axes] == ["left", "right"]
    assert legend_texts(fig) == ["zebra"]
    assert all_texts(fig) == ["hand 0", "hand 1", "hand 2"] * 2
    labels, overlay = fig.axes[0].images
    np.testing.assert_allclose(labels.get_cmap().colors, colors)
    np.testing.assert_array_equal(overlay.get_array()[disagree], np.tile(DISAGREE_COLOR, (63, 1)))
    assert not overlay.get_array()[~disagree].any()
    single = draw(replace(describe_plane(label_map, u, v, ANCHORS, class_names=NAMES, anchor_labels=[2, 3, 5],
                                         num_classes=10), title_lines=("one", "two")))
    assert single.axes[0].get_title() == "one\ntwo" and len(single.axes) == 1


def test_montage_of_figures_and_label_maps(tmp_path):
    maps = [plane_map(s)[0] for s in range(3)]
    fig = montage(maps, ["k=1", "k=2", "k=4"], ncols=2, num_classes=10, suptitle="widths")
    assert len(fig.axes) == 3 and [ax.get_title() for ax in fig.axes] == ["k=1", "k=2", "k=4"]
    label_map, u, v = plane_map()
    planes = [draw(describe_plane(label_map, u, v, ANCHORS, class_names=NAMES, anchor_labels=[2, 3, 5],
                                  title=f"seed {s}", num_classes=10)) for s in range(2)]
    fig2 = montage(planes, ["seed 0", "seed 1"], ncols=2)
    assert all(ax.images for ax in fig2.axes)
    assert os.path.getsize(save_figure(fig2, tmp_path / "m.png")) > 10_000
    with pytest.raises(ValueError):
        montage(maps, ["only one"], ncols=2)


def test_class_colors_are_distinct():
    for C in (2, 10, 20, 100):
        colors = class_colors(C)
        assert colors.shape == (C, 4)
        assert len({tuple(np.round(c, 4)) for c in colors}) == C
