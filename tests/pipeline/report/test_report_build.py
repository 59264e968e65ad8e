"""The full report of a synthetic double-descent sweep: every figure, the page and the CLI."""
import xml.etree.ElementTree as ET

import pytest
from report_fixtures import write_sweep

from ddsweep.pipeline.report import build_report, main

FIGURES = ("errors", "errors_vs_params", "regions", "agreement", "regions_vs_gap",
           "epochwise_test_error", "planes_montage", "planes_seeds")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = write_sweep(tmp_path_factory.mktemp("dd") / "sweep")
    return build_report(root, formats=("png", "svg"))


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_is_written_and_non_trivial(built, name):
    out = built.index.parent
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000, "a PNG this small is an empty or near-empty figure"
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert len(list(root.iter())) > 100


def test_page_references_every_figure_and_lists_every_run(built):
    page = built.index.read_text()
    for name in FIGURES:
        assert f"src='{name}.png'" in page
        assert f"href='{name}.svg'" in page
    assert "<h2>Runs</h2>" in page
    for run in built.sweep.runs:
        assert f">{run.name}</a>" in page
    assert page.count("<tr") >= len(built.sweep.runs) + 1
    assert "None: every run finished" in page
    assert (built.index.parent / "runs.csv").read_text().count("\n") == len(built.sweep.runs) + 1


def test_layout_is_width_by_noise_level(built):
    layout = built.layout
    assert layout.x_key == "model.width"
    # planes.families differs with the noise level in these configs but adds no new curve
    assert layout.group_keys == ["data.noise.rate"]
    assert list(layout.groups) == ["no label noise", "symmetric noise 0.2"]
    assert all(len(runs) == 6 for runs in layout.groups.values())


def test_cli_prints_the_page_last_and_honours_out_and_format(tmp_path, capsys):
    root = write_sweep(tmp_path / "sweep", widths=(2, 8), rates=(0.2,))
    assert main([str(root), "--out", str(tmp_path / "rep"), "--format", "png"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == str(tmp_path / "rep" / "index.html")
    assert "0 missing or failed" in lines[0]
    assert (tmp_path / "rep" / "errors.png").is_file()
    assert not list((tmp_path / "rep").glob("*.svg"))


def test_cli_rejects_bad_input(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "no run directory" in capsys.readouterr().err
    write_sweep(tmp_path / "s", widths=(2,), rates=(0.0,))
    assert main([str(tmp_path / "s"), "--format", "gif"]) == 2
    assert "--format" in capsys.readouterr().err


def test_page_says_which_curves_have_no_peak(tmp_path):
    import json
    import math

    # widths 1..16 with noise 0.2 (threshold 8, a bump there) and a monotone curve without noise
    root = write_sweep(tmp_path / "s", widths=(1, 2, 4, 8, 16), rates=(0.0, 0.2))
    for width in (1, 2, 4, 8, 16):
        path = root / "runs" / f"w{width:03d}_n0" / "summary.json"
        summary = json.loads(path.read_text())
        for key in [k for k in summary["metrics"] if k.startswith("test/error")]:
            summary["metrics"][key] = 0.5 - 0.05 * math.log2(width)  # falls monotonically
        path.write_text(json.dumps(summary))
    page = build_report(root, formats=("png",)).index.read_text()
    assert "No test-error peak: no label noise (no interior local maximum near its threshold)." in page
    assert "symmetric noise 0.2 (" not in page.split("No test-error peak")[1].split("</p>")[0]
