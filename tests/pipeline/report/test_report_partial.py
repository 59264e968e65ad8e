"""Partial sweeps: failed, diverged, metric-less, running and never-started points still give a
report, and the page and the CLI say what is missing."""
import json

from report_fixtures import write_run, write_sweep

from ddsweep.pipeline.report import build_report, main
from ddsweep.pipeline.report.analysis import make_layout
from ddsweep.pipeline.report.collect import load_sweep


def _partial_sweep(root):
    extra = [
        {"id": "w064_n0.2", "params": {"model.width": 64, "data.noise.rate": 0.2},
         "run_dir": "runs/w064_n0.2", "status": "failed", "error": "CUDA out of memory"},
        {"id": "w128_n0.2", "params": {"model.width": 128, "data.noise.rate": 0.2},
         "run_dir": "runs/w128_n0.2", "status": "finished", "error": None},
        {"id": "w256_n0.2", "params": {"model.width": 256, "data.noise.rate": 0.2},
         "run_dir": None, "status": "pending", "error": None},
        {"id": "w512_n0.2", "params": {"model.width": 512, "data.noise.rate": 0.2},
         "run_dir": "runs/w512_n0.2", "status": "running", "error": None},
    ]
    write_sweep(root, widths=(2, 4, 8, 16), rates=(0.0, 0.2), extra_points=extra)
    write_run(root / "runs" / "w064_n0.2", 64, 0.2, status="failed", error="CUDA out of memory")
    write_run(root / "runs" / "w128_n0.2", 128, 0.2, metrics=False)  # finished, metrics lost
    write_run(root / "runs" / "w512_n0.2", 32, 0.2, status="running", summary=False)
    write_run(root / "runs" / "w016_n0", 16, 0.0, status="diverged", error="loss is nan")
    (root / "runs" / "w004_n0.2" / "metrics.jsonl").open("a").write('{"epoch": 6, "test/err')  # torn line
    return root


def test_partial_sweep_is_loaded_with_reasons(tmp_path):
    sweep = load_sweep(_partial_sweep(tmp_path / "s"))
    missing = {run.name.split("/")[-1]: reason for run, reason in sweep.missing}
    assert set(missing) == {"w064_n0.2", "w128_n0.2", "w256_n0.2", "w512_n0.2", "w016_n0"}
    assert missing["w064_n0.2"].startswith("failed: CUDA out of memory")
    assert "no final test/error" in missing["w128_n0.2"]
    assert missing["w256_n0.2"].startswith("pending") and "no run directory" in missing["w256_n0.2"]
    assert missing["w512_n0.2"].startswith("running")
    assert missing["w016_n0"].startswith("diverged: loss is nan")
    torn = next(r for r in sweep.runs if r.name.endswith("w004_n0.2"))
    assert torn.plotted and "1 unreadable line(s) in metrics.jsonl" in torn.problems


def test_partial_sweep_report_lists_what_is_missing(tmp_path, capsys):
    root = _partial_sweep(tmp_path / "s")
    assert main([str(root), "--format", "png"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "5 missing or failed" in out[0]
    assert out[-1].endswith("index.html")
    page = (root / "report" / "index.html").read_text()
    section = page[page.index("Missing / failed"):page.index("<h2>Runs</h2>")]
    for name in ("w064_n0.2", "w128_n0.2", "w256_n0.2", "w512_n0.2", "w016_n0"):
        assert name in section
    assert "CUDA out of memory" in section
    assert (root / "report" / "errors.png").stat().st_size > 20_000
    # the curves hold only the finished runs: 3 of 4 widths without noise, all 4 with
    layout = make_layout(load_sweep(root).runs)
    assert [len(g) for g in layout.groups.values()] == [3, 4]


def test_nothing_finished_still_builds_a_page(tmp_path, capsys):
    write_run(tmp_path / "a", 4, 0.2, status="failed", error="boom", metrics=False, planes=False)
    (tmp_path / "state.json").write_text(json.dumps({"points": [
        {"id": "p1", "params": {"model.width": 8}, "run_dir": None, "status": "pending", "error": None}]}))
    assert main([str(tmp_path), "--format", "png"]) == 0
    out = capsys.readouterr().out
    assert "2 missing or failed" in out
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Not drawn" in page and "boom" in page and "p1" in page


def test_one_seed_one_run(tmp_path, capsys):
    write_run(tmp_path / "only", 8, 0.0, seeds=(0,))
    report = build_report(tmp_path, formats=("png",))
    drawn = {e.name for e in report.entries if e.files}
    assert {"errors", "regions", "regions_vs_gap", "epochwise_test_error", "planes_montage"} <= drawn
    assert "agreement" not in drawn and "planes_seeds" not in drawn  # one seed: nothing to compare
    page = report.index.read_text()
    assert "need two or more seeds" in page
    assert "Pearson r undefined (n = 1 runs)" in page


def _without_test_error(run_dir):
    """A run that finished without ever being evaluated (e.g. epochs < train.eval_every): region
    counts and agreement are there, test and train errors are not."""
    def keep(record):
        return {k: v for k, v in record.items() if not k.startswith(("test/", "train/"))}
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["metrics"] = keep(summary["metrics"])
    (run_dir / "summary.json").write_text(json.dumps(summary))
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(keep(r)) for r in lines) + "\n")


def test_notes_claim_only_what_is_missing(tmp_path, capsys):
    # the README's quick trial: 1 epoch with eval_every 10 leaves region counts but no test error
    for width in (4, 6):
        _without_test_error(write_run(tmp_path / f"w{width}", width, 0.0))
    assert main([str(tmp_path), "--format", "png"]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert notes == ["note: no run is plotted (none has finished with a final test/error): there is "
                     "nothing to plot; see 'Missing / failed'"]
    page = (tmp_path / "report" / "index.html").read_text()
    assert "no run has" not in page and "no plotted run has" not in page  # the regions ARE there
    assert page.count("Not drawn: no run is plotted (none has finished with a final test/error).") == 8
    assert "finished, but no final test/error" in page
    table = page[page.index("<h2>Runs</h2>"):]
    assert "regions (train planes)" in table  # the values the table shows


def test_figure_notes_name_the_plotted_runs(tmp_path):
    write_run(tmp_path / "plotted", 8, 0.0, seeds=(0,))
    _without_test_error(write_run(tmp_path / "unplotted", 4, 0.0))  # has agreement, is not plotted
    report = build_report(tmp_path, formats=("png",))
    notes = {e.name: e.note for e in report.entries if not e.files}
    assert notes["agreement"] == "no plotted run has repro metrics (they need two or more seeds)"
    assert report.notes == []
