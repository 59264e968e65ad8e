"""Decision-plane pictures of a network: predict the label maps, describe each picture
(ddsweep.pipeline.viz.picture.describe_plane), then hand the description to a renderer.

Training draws with the Pillow renderer (ddsweep.pipeline.viz.quicklook, ~15 ms a picture); `ddsweep plane`
and the report draw matplotlib figures (ddsweep.pipeline.viz.plots).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from ddsweep.pipeline.measure.evaluate import predict_labels
from ddsweep.pipeline.measure.planes import PlaneGrid, predict_planes
from ddsweep.pipeline.measure.regions import count_regions_batch
from ddsweep.pipeline.store.rundir import atomic_write_bytes
from ddsweep.pipeline.viz.picture import describe_plane


def draw_input_plane(fn, dataset, labels, *, resolution: int, title: str, path, device,
                     max_points_per_call: int, max_train_points: int = 2000, quick: bool = False):
    """For 2-D inputs the input space is itself a plane: the first seed's decision regions over the
    train set's bounding box (10% margin), with the train points drawn in the colour of the label
    they were trained on. `quick`: the training-time renderer (ddsweep.pipeline.viz.quicklook) instead of a
    matplotlib figure."""
    draw, save = _renderer(quick)

    x = dataset.x_train
    lo, hi = x.amin(0), x.amax(0)
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
    u = torch.linspace(float(lo[0]), float(hi[0]), resolution)
    v = torch.linspace(float(lo[1]), float(hi[1]), resolution)
    vv, uu = torch.meshgrid(v, u, indexing="ij")  # [R, R] each, indexed [j (v), i (u)]
    grid = torch.stack([uu.flatten(), vv.flatten()], 1).to(device=device, dtype=x.dtype)  # [R*R, 2]
    maps = predict_labels(fn, len(grid), lambda a, b: grid[a:b], max_points_per_call=max_points_per_call)
    keep = torch.arange(min(len(x), max_train_points))
    picture = describe_plane(maps[0].reshape(resolution, resolution).cpu().numpy(), u.numpy(), v.numpy(),
                             np.zeros((0, 2)), class_names=list(dataset.class_names), anchor_labels=[],
                             anchor_mislabeled=[], title=title, num_classes=dataset.num_classes,
                             train_points=(x[keep].cpu().numpy(), labels.noisy[keep].cpu().numpy()))
    return save(draw(picture), path)


def _renderer(quick: bool):
    """(draw a PlanePicture, save what it drew) of the chosen renderer: Pillow pictures at about
    15 ms each during training (ddsweep.pipeline.viz.quicklook), matplotlib figures (ddsweep.pipeline.viz.plots)
    for `ddsweep plane`, at about 0.2-0.4 s each."""
    if quick:
        from ddsweep.pipeline.viz.quicklook import draw

        return draw, lambda picture, path: picture.save(path)
    from ddsweep.pipeline.viz.plots import draw, save_figure

    return draw, save_figure


def draw_planes(fn, anchors, idx, fam: str, dataset, labels, *, seeds, resolution: int, margin: float,
                title: str, stem: str, suffix: str, max_points_per_call: int, plane_ids=None,
                quick: bool = False) -> dict:
    """Draw the planes through `anchors` [T, 3, *shape] (train or test indices `idx` [T, 3] of family
    `fam`): <stem>_<suffix>.png (first seed), <stem>_seeds_<suffix>.png (all seeds, disagreement
    marked) and <stem>_<suffix>.npz (raw label maps). `title` and `stem` may use {t} (the plane's
    number in its family: `plane_ids[t]`, default t) and {regions}. Returns W&B image key → PNG path.
    `quick`: Pillow pictures (training time) instead of matplotlib figures (see `_renderer`)."""
    draw, save = _renderer(quick)

    test = fam == "test"
    names = list(dataset.class_names)
    maps = predict_planes(fn, anchors, resolution, margin, max_points_per_call=max_points_per_call)  # [S, T, R, R]
    grid = PlaneGrid(anchors, resolution, margin)
    regions = count_regions_batch(maps[0])
    images = {}
    plane_ids = list(range(idx.shape[0])) if plane_ids is None else list(plane_ids)
    for t, pid in enumerate(plane_ids):
        noisy = (dataset.y_test if test else labels.noisy)[idx[t]].tolist()
        true = (dataset.y_test if test else labels.clean)[idx[t]].tolist()
        mis = [False] * 3 if test else labels.changed[idx[t]].tolist()
        common = dict(class_names=names, anchor_labels=noisy, anchor_true_labels=true,
                      anchor_mislabeled=mis, num_classes=dataset.num_classes)
        u, v, coords = grid.u[t].cpu().numpy(), grid.v[t].cpu().numpy(), grid.coords[t].cpu().numpy()
        head = stem.format(t=pid)
        text = title.format(t=pid, regions=int(regions[t]))
        picture = describe_plane(maps[0, t].cpu().numpy(), u, v, coords, title=text, **common)
        images[f"planes/{fam}_{pid}"] = save(draw(picture), f"{head}_{suffix}.png")
        if maps.shape[0] > 1:
            picture = describe_plane(maps[:, t].cpu().numpy(), u, v, coords, title=text,
                                     seed_names=[f"seed {s}" for s in seeds], **common)
            images[f"planes/{fam}_{pid}_seeds"] = save(draw(picture), f"{head}_seeds_{suffix}.png")
        save_npz(f"{head}_{suffix}.npz", labels=maps[:, t].cpu().numpy(), u=u, v=v, anchors=coords,
                 anchor_labels=np.array(noisy), anchor_true=np.array(true), anchor_mislabeled=np.array(mis),
                 class_names=np.array(names), regions=np.array(int(regions[t])))
    return images


def save_npz(path: str, **arrays) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(Path(path), buffer.getvalue())
