"""The numbers behind the figures, on constructed cases with known answers."""
import math

import numpy as np
import pytest
from report_fixtures import EPOCHS, RATES, THRESHOLD, WIDTHS, curve_values, write_run, write_sweep

from ddsweep.pipeline.report import analysis as A
from ddsweep.pipeline.report.collect import load_sweep


def test_interpolation_threshold_is_the_smallest_width_that_fits():
    xs = [1, 2, 4, 8, 16, 32]
    train = [0.5, 0.2, 0.011, 0.0, 0.02, 0.0]  # 16 un-fits again: still 8 is the threshold
    assert A.interpolation_threshold(xs, train) == 8
    assert A.interpolation_threshold(xs, [0.5, 0.2, A.INTERPOLATION_TOL, 0, 0, 0]) == 4  # ≤ is inclusive
    assert A.interpolation_threshold(xs, [0.5] * 6) is None
    assert A.interpolation_threshold(list(reversed(xs)), list(reversed(train))) == 8  # order-free
    assert A.interpolation_threshold([1, 2], [None, 0.0]) == 2


def test_local_maxima_are_interior_and_collapse_plateaus():
    assert A.local_maxima([1, 2, 4, 8], [0.3, 0.5, 0.5, 0.2]) == [(2, 0.5)]  # plateau: its first x
    assert A.local_maxima([1, 2, 4, 8], [0.5, 0.4, 0.3, 0.2]) == []  # monotone: the end is no maximum
    assert A.local_maxima([1, 2, 4, 8], [0.2, 0.3, 0.4, 0.5]) == []
    assert A.local_maxima([1, 2, 4, 8, 16], [0.3, 0.5, 0.5, 0.6, 0.1]) == [(8, 0.6)]  # a shoulder is not one
    assert A.local_maxima([8, 1, 4, 2], [0.2, 0.3, 0.5, 0.4]) == [(4, 0.5)]  # order-free
    assert A.local_maxima([1, 2, 4], [0.1, None, 0.3]) == []


WIDTHS_64 = [1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64]


def test_monotone_curve_has_no_peak():
    falling = [0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.28, 0.26, 0.25, 0.24, 0.23]
    assert A.error_peak(WIDTHS_64, falling, threshold=8) is None
    assert A.error_peak(WIDTHS_64, falling, threshold=1) is None


def test_bump_near_the_threshold_is_the_peak():
    bump = [0.5, 0.45, 0.42, 0.47, 0.55, 0.5, 0.4, 0.35, 0.3, 0.28, 0.27]  # local max at 8
    assert A.error_peak(WIDTHS_64, bump, threshold=8) == (8, 0.55)
    assert A.error_peak(WIDTHS_64, bump, threshold=6) == (8, 0.55)  # within a factor 2
    assert A.error_peak(WIDTHS_64, bump, threshold=None) is None  # no threshold: no peak


def test_far_bump_is_not_the_peak_but_a_near_one_is():
    # a higher bump at k = 2 (far from the threshold 24) and a lower one at 24
    two_bumps = [0.5, 0.7, 0.45, 0.4, 0.38, 0.42, 0.46, 0.5, 0.4, 0.3, 0.25]
    assert A.error_peak(WIDTHS_64, two_bumps, threshold=24) == (24, 0.5)
    assert A.error_peak(WIDTHS_64, two_bumps, threshold=2) == (2, 0.7)
    only_far = [0.5, 0.7, 0.45, 0.4, 0.38, 0.36, 0.34, 0.3, 0.28, 0.26, 0.25]
    assert A.error_peak(WIDTHS_64, only_far, threshold=24) is None  # the global max is not "near"
    assert max(only_far) == 0.7  # ...though it is the global maximum the old rule would have starred


def test_highest_local_maximum_within_the_window_wins():
    wiggly = [0.5, 0.45, 0.42, 0.44, 0.43, 0.52, 0.4, 0.35, 0.3, 0.28, 0.27]  # maxima at 6 and 12
    assert A.error_peak(WIDTHS_64, wiggly, threshold=8) == (12, 0.52)


def test_pearson_matches_numpy_on_the_synthetic_sweep(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path / "s"))
    gaps = [A.generalization_gap(r) for r in sweep.runs]
    counts = [r.value("regions1d/mean") for r in sweep.runs]
    r, n = A.pearson(gaps, counts)
    assert n == len(WIDTHS) * len(RATES)
    assert r == pytest.approx(np.corrcoef(gaps, counts)[0, 1], abs=1e-12)
    expected = [curve_values(w, q)["test/error"] - curve_values(w, q)["train/error"] for q in RATES for w in WIDTHS]
    assert sorted(gaps) == pytest.approx(sorted(expected))


def test_pearson_degenerate_cases():
    assert math.isnan(A.pearson([1.0], [2.0])[0])
    assert math.isnan(A.pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])[0])
    assert A.pearson([1, None, 3, 4], [2, 5, 6, None]) == (pytest.approx(1.0), 2)


def test_curve_uses_per_seed_values_and_falls_back_to_the_bare_mean(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path / "s", widths=(4, 8), rates=(0.2,)))
    layout = A.make_layout(sweep.runs)
    stats = A.curve(sweep.runs, layout.x_of, "test/error")
    assert [s.x for s in stats] == [4, 8]
    for s in stats:
        run = next(r for r in sweep.runs if r.settings["model.width"] == s.x)
        seeds = run.seed_values("test/error")
        assert len(seeds) == 2 and s.n == 2
        assert s.mean == pytest.approx(np.mean(seeds))
        assert s.std == pytest.approx(np.std(seeds, ddof=1))
    # repro metrics have no per-seed values: the bare mean is the single value
    agreement = A.curve(sweep.runs, layout.x_of, "repro/plane_agreement")
    assert [s.n for s in agreement] == [1, 1] and all(s.std == 0 for s in agreement)


def test_heatmap_is_widths_by_epochs(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path / "s"))
    layout = A.make_layout(sweep.runs)
    runs = layout.groups["symmetric noise 0.2"]
    xs, epochs, values = A.heatmap(runs, layout.x_of)
    assert values.shape == (len(WIDTHS), EPOCHS)
    assert list(xs) == list(WIDTHS) and list(epochs) == list(range(1, EPOCHS + 1))
    assert not np.isnan(values).any()
    last = {r.settings["model.width"]: r.value("test/error") for r in runs}
    assert values[:, -1] == pytest.approx([last[w] for w in WIDTHS])


def test_heatmap_marks_missing_epochs_as_nan(tmp_path):
    write_run(tmp_path / "a", 4, 0.2, epochs=6)
    write_run(tmp_path / "b", 8, 0.2, epochs=4)
    runs = load_sweep(tmp_path).runs
    xs, epochs, values = A.heatmap(runs, A.make_layout(runs).x_of)
    assert values.shape == (2, 6)
    assert np.isnan(values[1, 4:]).all() and not np.isnan(values[0]).any()


def test_threshold_of_the_synthetic_curves(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path / "s"))
    layout = A.make_layout(sweep.runs)
    for rate, label in zip(RATES, layout.groups):
        runs = layout.groups[label]
        xs = [layout.x_of(r) for r in runs]
        threshold = A.interpolation_threshold(xs, [r.value("train/error") for r in runs])
        assert threshold == THRESHOLD[rate]
        assert A.error_peak(xs, [r.value("test/error") for r in runs], threshold)[0] == THRESHOLD[rate]
        assert A.curve_markers(runs, layout.x_of) == (THRESHOLD[rate], (THRESHOLD[rate], pytest.approx(
            curve_values(THRESHOLD[rate], rate)["test/error"])))


def test_non_width_sweep_groups_by_the_other_swept_keys(tmp_path):
    """The lr x batch grid of the region-count preset: x is the first varying numeric key."""
    import yaml
    for i, (lr, batch) in enumerate([(lr, b) for lr in (0.1, 0.01) for b in (256, 512)]):
        d = write_run(tmp_path / f"r{i}", 64, 0.0)
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        cfg["train"].update(lr=lr, batch_size=batch)
        (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    runs = load_sweep(tmp_path).runs
    layout = A.make_layout(runs, order=["train.lr", "train.batch_size"])
    assert layout.x_key == "train.lr" and layout.group_keys == ["train.batch_size"]
    assert list(layout.groups) == ["batch size=256", "batch size=512"]
    assert A.make_layout(runs).x_key == "train.batch_size"  # without sweep.yaml: config order


def test_single_run(tmp_path):
    write_run(tmp_path / "only", 8, 0.2)
    runs = load_sweep(tmp_path).runs
    layout = A.make_layout(runs)
    assert layout.x_key == "model.width" and layout.group_keys == []
    assert list(layout.groups) == ["all runs"]


def test_a_run_directory_itself_is_a_sweep_of_one(tmp_path):
    write_run(tmp_path / "w8", 8, 0.2)
    (run,) = load_sweep(tmp_path / "w8").runs
    assert run.name == "w8" and run.plotted and run.seeds == [0, 1]
    assert "step" not in run.final and "epoch" not in run.final
