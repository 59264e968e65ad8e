"""The numbers behind the figures, on constructed cases with known answers."""
import math

import numpy as np
import pytest
from report_fixtures import EPOCHS, RATES, THRESHOLD, WIDTHS, curve_values, write_run, write_sweep

from pipeline.report import analysis as A
from pipeline.report.collect import load_sweep


def test_interpolation_threshold_is_the_smallest_width_that_fits():
    xs = [1, 2, 4, 8, 16, 32]
    train = [0.5, 0.2, 0.011, 0.0, 0.02, 0.0]  # 16 un-fits again: still 8 is the threshold
    assert A.interpolation_threshold(xs, train) == 8
    assert A.interpolation_threshold(xs, [0.5, 0.2, A.INTERPOLATION_TOL, 0, 0, 0]) == 4  # ≤ is inclusive
    assert A.interpolation_threshold(xs, [0.5] * 6) is None
    assert A.interpolation_threshold(list(reversed(xs)), list(reversed(train))) == 8  # order-free
    assert A.interpolation_threshold([1, 2], [None, 0.0]) == 2


def test_error_peak():
    assert A.error_peak([1, 2, 4, 8], [0.3, 0.5, 0.5, 0.2]) == (2, 0.5)
    assert A.error_peak([1, 2], [None, None]) is None


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
        assert A.interpolation_threshold(xs, [r.value("train/error") for r in runs]) == THRESHOLD[rate]
        assert A.error_peak(xs, [r.value("test/error") for r in runs])[0] == THRESHOLD[rate]


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
