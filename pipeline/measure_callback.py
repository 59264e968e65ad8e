"""The measurement schedule: decision planes, region counts, seed agreement, margins, pictures.

The callback only schedules; every number comes from the pure functions in pipeline.measure.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch

from ddsweep.errors import ConfigError
from pipeline.measure.evaluate import as_logits_fn, batched_logits, predict_labels
from pipeline.measure.margin import (dbviz_average, dbviz_steps, direction_margins, draw_directions,
                                     geometric_steps, margin_summary, margins)
from pipeline.measure.planes import PlaneGrid, predict_planes
from pipeline.measure.regions import count_regions_batch, segment_counts, summarize, triangle_counts
from pipeline.measure.repro import pd_l1, plane_agreement, test_disagreement
from pipeline.measure.triplets import check_family, draw_pairs, draw_triplets
from pipeline.viz.draw import draw_input_plane, draw_planes


class DecisionPlanes(L.Callback):
    """Every `planes.every_n_epochs` epochs (and at the last epoch) logs:

    regions/<family>/mean|median|std (per seed as .../seed<N>, bare = mean over seeds),
    regions2d/<family>/mean|median|std (the triangle variant, when `planes.triangles` is on),
    regions1d/mean, repro/plane_agreement, repro/test_disagreement, repro/pd_l1 (S ≥ 2 only),
    margin/clean/mean|median, margin/mislabeled/mean|median (when margin.points > 0);
    and every `planes.draw_every_n_epochs` epochs (and at the last) draws the first `planes.draw`
    planes of each family: planes/<family>_<i>_e<epoch>.png (first seed), ..._seeds_e<epoch>.png
    (seeds side by side, disagreement marked) and the raw label maps ..._e<epoch>.npz.

    Triplets and pairs are drawn once from `planes.seed` and kept in `state_dict`, so a resumed run
    and every run of a sweep (same data, same seed) measure the same planes.
    """

    def __init__(self, cfg, run_dir, dataset, labels, log, seeds: list[int]):
        self.cfg = cfg
        self.p = cfg.planes
        self.run_dir = run_dir
        self.dataset = dataset
        self.labels = labels
        self.epoch_log = log
        self.seeds = list(seeds)
        self.indices: dict[str, torch.Tensor] = {}
        self.title = (f"{cfg.model.name} k={cfg.model.width}, {cfg.data.name}, "
                      f"{cfg.data.noise.kind} noise {cfg.data.noise.rate:g}")

    # ---------------------------------------------------------------- state
    def setup(self, trainer, pl_module, stage: str) -> None:
        if not self.indices:
            self.indices = draw_indices(self.cfg, self.dataset, self.labels, len(self.seeds))

    def state_dict(self) -> dict:
        return {k: v.clone() for k, v in self.indices.items()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.indices = {k: v.clone() for k, v in state_dict.items()}

    # ---------------------------------------------------------------- schedule
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        last = epoch == trainer.max_epochs
        if self.p.every_n_epochs and (epoch % self.p.every_n_epochs == 0 or last):
            self._measure(pl_module, epoch)
        if self.p.draw and self.p.every_n_epochs and (epoch % self.p.draw_every_n_epochs == 0 or last):
            self._draw(pl_module, epoch)

    def _inputs(self, idx: torch.Tensor, test: bool, device) -> torch.Tensor:
        x = self.dataset.x_test if test else self.dataset.x_train
        return x[idx].to(device)

    def _measure(self, pl_module, epoch: int) -> None:
        fn = as_logits_fn(pl_module.net)
        device = pl_module.device
        amp = torch.bfloat16 if device.type == "cuda" else None
        kw = dict(max_points_per_call=self.p.max_points_per_call, amp_dtype=amp)
        out = self.epoch_log.metrics
        for fam in self.p.families:
            anchors = self._inputs(self.indices[f"planes/{fam}"], fam == "test", device)  # [T, 3, *shape]
            maps = predict_planes(fn, anchors, self.p.resolution, self.p.margin, **kw)   # [S, T, R, R]
            for stat, value in summarize(count_regions_batch(maps)).items():
                out[f"regions/{fam}/{stat}"] = value
            if self.p.triangles:  # METHODS' 2-D variant: the triangle α+β ≤ 1 of the same triplets
                counts = triangle_counts(fn, anchors[:, 0], anchors[:, 1], anchors[:, 2], self.p.resolution, **kw)
                for stat, value in summarize(counts).items():
                    out[f"regions2d/{fam}/{stat}"] = value
        if "pairs1d" in self.indices:
            pairs = self._inputs(self.indices["pairs1d"], False, device)  # [P, 2, *shape]
            counts = segment_counts(fn, pairs[:, 0], pairs[:, 1], self.cfg.regions1d.points, **kw)
            out["regions1d/mean"] = counts.double().mean(dim=1)
        if "agreement" in self.indices:
            anchors = self._inputs(self.indices["agreement"], True, device)  # test points
            maps = predict_planes(fn, anchors, self.p.resolution, self.p.margin, **kw)
            out["repro/plane_agreement"] = plane_agreement(maps)
            test_logits = pl_module.eval_logits.get("test")  # this epoch's evaluation, if it ran
            if test_logits is None:
                x_test = self.dataset.x_test.to(device)
                test_logits = batched_logits(fn, x_test, self.cfg.train.eval_batch_size, amp_dtype=amp)
            out["repro/test_disagreement"] = test_disagreement(test_logits)
            out["repro/pd_l1"] = pd_l1(test_logits)
        if "margin" in self.indices:
            idx = self.indices["margin"]
            pairs = self._inputs(idx, False, device)  # [P, 2] (lower_bound) or [P, 1 + J] (dbviz) points
            if self.cfg.margin.method == "dbviz":
                m = dbviz_average(direction_margins(fn, pairs[:, 0], pairs[:, 1:], dbviz_steps(), **kw),
                                  self.cfg.margin.directions)
            else:
                m = margins(fn, pairs[:, 0], pairs[:, 1], geometric_steps(
                    self.cfg.margin.max_step / 2 ** 10, self.cfg.margin.max_step, self.cfg.margin.steps), **kw)
            for key, value in margin_summary(m, self.labels.changed[idx[:, 0]]).items():
                out[f"margin/{key}"] = value

    def _draw(self, pl_module, epoch: int) -> None:
        fn = as_logits_fn(pl_module.net)
        for fam in self.p.families:
            idx = self.indices[f"planes/{fam}"][: self.p.draw]
            anchors = self._inputs(idx, fam == "test", pl_module.device)
            images = draw_planes(fn, anchors, idx, fam, self.dataset, self.labels, seeds=self.seeds,
                                 resolution=self.p.draw_resolution, margin=self.p.draw_margin,
                                 title=f"{self.title}\n{fam} plane {{t}}, epoch {epoch}, {{regions}} regions",
                                 stem=str(self.run_dir.planes / f"{fam}_{{t}}"), suffix=f"e{epoch:04d}",
                                 max_points_per_call=self.p.max_points_per_call, quick=True)
            self.epoch_log.images.update(images)
        if tuple(self.dataset.in_shape) == (2,):
            path = draw_input_plane(fn, self.dataset, self.labels, resolution=self.p.draw_resolution,
                                    title=f"{self.title}\ninput plane, epoch {epoch}",
                                    path=self.run_dir.planes / f"input_e{epoch:04d}.png",
                                    device=pl_module.device, max_points_per_call=self.p.max_points_per_call,
                                    quick=True)
            self.epoch_log.images["planes/input"] = path


def draw_indices(cfg, dataset, labels, n_seeds: int) -> dict[str, torch.Tensor]:
    """Every triplet and pair a run measures, drawn once from `planes.seed` in a fixed order."""
    p = cfg.planes
    gen = torch.Generator().manual_seed(p.seed)
    common = dict(y_noisy=labels.noisy, y_clean=labels.clean, changed=labels.changed, x=dataset.x_train,
                  y_test=dataset.y_test, x_test=dataset.x_test)
    out = {f"planes/{fam}": draw_triplets(fam, p.n_planes, generator=gen, **common) for fam in p.families}
    if n_seeds > 1 and p.agreement_triplets:
        out["agreement"] = draw_triplets(p.agreement_family, p.agreement_triplets, generator=gen, **common)
    n = len(dataset.x_train)
    if cfg.regions1d.pairs:
        out["pairs1d"] = draw_pairs(cfg.regions1d.pairs, generator=gen, n_points=n, x=dataset.x_train)
    if cfg.margin.points and cfg.margin.method == "dbviz":  # dbViz: directions + 10 candidates each
        out["margin"] = draw_directions(cfg.margin.points, cfg.margin.directions + 10, n_points=n, generator=gen)
    elif cfg.margin.points:
        out["margin"] = draw_pairs(cfg.margin.points, generator=gen, n_points=n, x=dataset.x_train)
    return out


def check_families(cfg, dataset, labels) -> None:
    """Every triplet family the run will draw is possible on this data (before any work starts)."""
    if not cfg.planes.every_n_epochs:
        return
    common = dict(y_noisy=labels.noisy, y_clean=labels.clean, changed=labels.changed, y_test=dataset.y_test)
    for fam in cfg.planes.families:
        check_family(fam, **common)
    if len(cfg.seeds) > 1 and cfg.planes.agreement_triplets:
        try:
            check_family(cfg.planes.agreement_family, **common)
        except ConfigError as err:
            why = str(err).removeprefix("planes.families: ")
            raise ConfigError(f"planes.agreement_family: {why} (for data with fewer than 3 classes set "
                              "planes.agreement_family=test)") from None


def measurement_callbacks(cfg, run_dir, dataset, labels, log, seeds) -> list:
    if not cfg.planes.every_n_epochs:
        return []
    return [DecisionPlanes(cfg, run_dir, dataset, labels, log, seeds)]
