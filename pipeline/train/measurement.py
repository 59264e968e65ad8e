"""A run's measurement schedule: decision planes, region counts, seed agreement, margins, pictures.

`Measurement` only schedules and holds the run's triplets; every number comes from the pure
functions in ddsweep.pipeline.measure and every picture from ddsweep.pipeline.viz. `EpochEnd` calls it.
"""
from __future__ import annotations

import hashlib
import math

import torch

from ddsweep.errors import ConfigError
from ddsweep.pipeline.measure.evaluate import as_logits_fn
from ddsweep.pipeline.measure.margin import (dbviz_average, dbviz_steps, direction_margins, draw_directions,
                                     geometric_steps, margin_summary, margins)
from ddsweep.pipeline.measure.planes import predict_planes
from ddsweep.pipeline.measure.regions import count_regions_batch, segment_counts, summarize, triangle_counts
from ddsweep.pipeline.measure.repro import plane_agreement
from ddsweep.pipeline.measure.triplets import check_family, draw_pairs, draw_triplets
from ddsweep.pipeline.train.device import measure_amp_dtype
from ddsweep.pipeline.viz.draw import draw_input_plane, draw_planes


class Measurement:
    """On its schedule (`planes.schedule`: `linear`, every `planes.every_n_epochs` epochs; `log`, the
    epochs of `log_epochs(train.epochs, planes.log_points)`), at the last epoch, and at epoch 0 with
    `planes.at_init`, measures through the pure functions of ddsweep.pipeline.measure, in fp32 whatever the training
    precision (bf16 autocast only when `planes.precision=bf16`):

    regions/<family>/mean|median|std (per seed as .../seed<N>, bare = mean over seeds),
    regions2d/<family>/mean|median|std (the triangle variant, when `planes.triangles` is on),
    regions1d/mean, repro/plane_agreement (S >= 2 only),
    margin/clean/mean|median, margin/mislabeled/mean|median (when margin.points > 0);
    and every `planes.draw_every_n_epochs` epochs (and at the last) draws the first `planes.draw`
    planes of each family: planes/<family>_<i>_e<epoch>.png (first seed), ..._seeds_e<epoch>.png
    (seeds side by side, disagreement marked) and the raw label maps ..._e<epoch>.npz.

    Triplets and pairs are drawn once from `planes.seed` (`draw_indices`) and kept in the run's
    checkpoints (`state_dict`), so a resumed run and every run of a sweep (same data, same seed)
    measure the same planes.
    """

    def __init__(self, cfg, run_dir, dataset, labels, seeds: list[int]):
        self.cfg = cfg
        self.p = cfg.planes
        self.run_dir = run_dir
        self.dataset = dataset
        self.labels = labels
        self.seeds = list(seeds)
        self.indices = draw_indices(cfg, dataset, labels, len(self.seeds))
        self.log_epochs = set(log_epochs(cfg.train.epochs, self.p.log_points)) if self.p.schedule == "log" else None
        self.title = (f"{cfg.model.name} k={cfg.model.width}, {cfg.data.name}, "
                      f"{cfg.data.noise.kind} noise {cfg.data.noise.rate:g}")

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {k: v.clone() for k, v in self.indices.items()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.indices = {k: v.clone() for k, v in state_dict.items()}

    # ---------------------------------------------------------------- schedule
    def due(self, epoch: int, last: bool) -> bool:
        every = self.p.every_n_epochs
        if not every:
            return False
        if last:
            return True
        return epoch in self.log_epochs if self.log_epochs is not None else epoch % every == 0

    def draw_due(self, epoch: int, last: bool) -> bool:
        return bool(self.p.draw and self.p.every_n_epochs) and (last or epoch % self.p.draw_every_n_epochs == 0)

    def _inputs(self, idx: torch.Tensor, test: bool, device) -> torch.Tensor:
        x = self.dataset.x_test if test else self.dataset.x_train
        return x[idx].to(device)

    def measure(self, net, device) -> dict:
        """This epoch's measurement metrics: name → per-seed tensor [S] or number."""
        fn = as_logits_fn(net)
        kw = dict(max_points_per_call=self.p.max_points_per_call, amp_dtype=measure_amp_dtype(self.p.precision))
        out: dict = {}
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
        return out

    def draw(self, net, device, epoch: int) -> dict:
        """Training-time pictures of this epoch: W&B image key → PNG path."""
        fn = as_logits_fn(net)
        images: dict = {}
        for fam in self.p.families:
            idx = self.indices[f"planes/{fam}"][: self.p.draw]
            anchors = self._inputs(idx, fam == "test", device)
            images.update(draw_planes(fn, anchors, idx, fam, self.dataset, self.labels, seeds=self.seeds,
                                      resolution=self.p.draw_resolution, margin=self.p.draw_margin,
                                      title=f"{self.title}\n{fam} plane {{t}}, epoch {epoch}, {{regions}} regions",
                                      stem=str(self.run_dir.planes / f"{fam}_{{t}}"), suffix=f"e{epoch:04d}",
                                      max_points_per_call=self.p.max_points_per_call, quick=True))
        if tuple(self.dataset.in_shape) == (2,):
            images["planes/input"] = draw_input_plane(
                fn, self.dataset, self.labels, resolution=self.p.draw_resolution,
                title=f"{self.title}\ninput plane, epoch {epoch}", path=self.run_dir.planes / f"input_e{epoch:04d}.png",
                device=device, max_points_per_call=self.p.max_points_per_call, quick=True)
        return images


def log_epochs(epochs: int, points: int) -> list[int]:
    """The epochs of the log schedule: round(epochs ** (i / (points - 1))) for i = 0 .. points - 1,
    rounded half up, without repeats. It always holds epoch 1 and the last epoch; where rounding
    merges neighbours (the first epochs of a long run, or points > epochs) it has fewer than
    `points` epochs, e.g. log_epochs(100, 5) = [1, 3, 10, 32, 100]."""
    return sorted({math.floor(epochs ** (i / (points - 1)) + 0.5) for i in range(points)})


def draw_stream(seed: int, name: str) -> torch.Generator:
    """The generator of one named draw (a triplet family, the agreement triplets, the 1-D pairs,
    the margin points): its own stream derived from (`planes.seed`, name), so adding or removing
    one draw leaves every other draw unchanged."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def draw_indices(cfg, dataset, labels, n_seeds: int) -> dict[str, torch.Tensor]:
    """Every triplet and pair a run measures, each draw from its own stream of `planes.seed`."""
    p = cfg.planes
    common = dict(y_noisy=labels.noisy, y_clean=labels.clean, changed=labels.changed, x=dataset.x_train,
                  y_test=dataset.y_test, x_test=dataset.x_test)
    out = {f"planes/{fam}": draw_triplets(fam, p.n_planes, generator=draw_stream(p.seed, f"planes/{fam}"), **common)
           for fam in p.families}
    if n_seeds > 1 and p.agreement_triplets:
        out["agreement"] = draw_triplets(p.agreement_family, p.agreement_triplets,
                                         generator=draw_stream(p.seed, "agreement"), **common)
    n = len(dataset.x_train)
    if cfg.regions1d.pairs:
        out["pairs1d"] = draw_pairs(cfg.regions1d.pairs, generator=draw_stream(p.seed, "pairs1d"), n_points=n,
                                    x=dataset.x_train)
    if cfg.margin.points and cfg.margin.method == "dbviz":  # dbViz: directions + 10 candidates each
        out["margin"] = draw_directions(cfg.margin.points, cfg.margin.directions + 10, n_points=n,
                                        generator=draw_stream(p.seed, "margin"))
    elif cfg.margin.points:
        out["margin"] = draw_pairs(cfg.margin.points, generator=draw_stream(p.seed, "margin"), n_points=n,
                                   x=dataset.x_train)
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


def build_measurement(cfg, run_dir, dataset, labels, seeds) -> Measurement | None:
    """The run's measurement, or None when decision planes are off (`planes.every_n_epochs: 0`)."""
    if not cfg.planes.every_n_epochs:
        return None
    return Measurement(cfg, run_dir, dataset, labels, seeds)
