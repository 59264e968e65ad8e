"""The report's HTML page: figures by relative path with captions, the curve summary, the
"Missing / failed" section and the table of every run. One self-contained file, no scripts."""
from __future__ import annotations

import datetime
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ddsweep.pipeline.store.rundir import atomic_write_text
from ddsweep.pipeline.report import analysis as A
from ddsweep.pipeline.report.collect import Sweep
from ddsweep.pipeline.report.tables import fmt, group_table, run_table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { max-width: 70em; margin-top: 0.4em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
tr.bad td { background: #fde8e8; } tr.wait td { background: #fff6dd; }
.note { color: #8a5a00; }
"""


@dataclass
class FigureEntry:
    name: str  # file stem, e.g. "errors"
    title: str
    caption: str
    files: dict = field(default_factory=dict)  # fmt -> Path; empty when not drawn
    note: Optional[str] = None  # why it was not drawn


def write_page(out_dir: Path, sweep: Sweep, layout: A.Layout, entries: list[FigureEntry],
               notes: list[str]) -> Path:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>ddsweep report: "
             f"{_e(sweep.root.name)}</title><style>{STYLE}</style></head><body>",
             f"<h1>ddsweep report: {_e(sweep.root.name)}</h1>", _meta(sweep, layout)]
    parts += [f"<p class='note'>{_e(n)}</p>" for n in notes]
    parts.append("<h2>Curves</h2>")
    parts.append(_table(*group_table(layout)) if layout.groups else "<p>No finished run to plot.</p>")
    if layout.width_sweep:
        parts.append(f"<p>Interpolation threshold: the smallest {_e(layout.x_label)} whose final train error "
                     f"on the labels trained on (mean over seeds) is at most {A.INTERPOLATION_TOL:.0%}. "
                     f"Test-error peak: the highest interior local maximum of the test error (mean over "
                     f"seeds) within a factor {A.PEAK_WINDOW:g} of the threshold; a curve without one there "
                     f"(e.g. one that falls monotonically) has no peak.</p>")
        parts.append(_no_peak(layout))
    parts += [_figure(out_dir, entry) for entry in entries]
    parts.append(_missing(sweep))
    parts.append("<h2>Runs</h2>")
    columns, rows = run_table(sweep, layout)
    parts.append(_table(columns, rows, link_runs=(out_dir, sweep)))
    parts.append("</body></html>")
    path = out_dir / "index.html"
    atomic_write_text(path, "\n".join(parts))
    return path


def _e(text) -> str:
    return html.escape(str(text))


def _meta(sweep: Sweep, layout: A.Layout) -> str:
    plotted = sum(r.plotted for r in sweep.runs)
    swept = ", ".join(A.KEY_LABELS.get(k, k) for k in ([layout.x_key] if layout.x_key else []) + layout.group_keys)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f"<p class='meta'>{_e(sweep.root.resolve())} · written {when} · {len(sweep.runs)} runs, "
            f"{plotted} finished and plotted, <a href='#missing'>{len(sweep.missing)} missing or failed</a> · "
            f"x axis: {_e(layout.x_label)} · swept: {_e(swept or 'nothing')}</p>")


def _no_peak(layout: A.Layout) -> str:
    """One line naming the curves without a test-error peak, and why; empty when every curve has one."""
    why = []
    for label, runs in layout.groups.items():
        threshold, peak = A.curve_markers(runs, layout.x_of)
        if peak is None:
            why.append(f"{label} (no interpolation threshold)" if threshold is None else
                       f"{label} (no interior local maximum near its threshold)")
    return f"<p class='note'>No test-error peak: {_e('; '.join(why))}.</p>" if why else ""


def _figure(out_dir: Path, entry: FigureEntry) -> str:
    if not entry.files:
        return f"<h3>{_e(entry.title)}</h3><p class='note'>Not drawn: {_e(entry.note or 'no data')}.</p>"
    shown = entry.files.get("png") or next(iter(entry.files.values()))
    links = " · ".join(f"<a href='{_e(p.relative_to(out_dir).as_posix())}'>{fmt_.upper()}</a>"
                       for fmt_, p in entry.files.items())
    return (f"<h3 id='{_e(entry.name)}'>{_e(entry.title)}</h3><figure>"
            f"<img src='{_e(shown.relative_to(out_dir).as_posix())}' alt='{_e(entry.title)}'>"
            f"<figcaption>{_e(entry.caption)} ({links})</figcaption></figure>")


def _missing(sweep: Sweep) -> str:
    missing = sweep.missing
    head = "<h2 id='missing'>Missing / failed</h2>"
    if not missing:
        return head + "<p>None: every run finished with its final metrics.</p>"
    items = "".join(f"<li><b>{_e(run.name)}</b>: {_e(reason)}</li>" for run, reason in missing)
    return (head + f"<p>{len(missing)} of {len(sweep.runs)} runs are not in the curves "
            f"(failed, diverged, not finished, or without final metrics):</p><ul>{items}</ul>")


def _table(columns, rows, link_runs=None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_e(c)}</th>" for c in columns) + "</tr>"]
    runs = {r.name: r for r in link_runs[1].runs} if link_runs else {}
    for row in rows:
        run = runs.get(row[0])
        cls = ""
        if run is not None and not run.plotted:
            # failed, diverged, or finished without metrics: red; not finished yet: yellow
            cls = " class='bad'" if run.status in ("failed", "diverged", "finished") else " class='wait'"
        cells = [_e(fmt(v)) for v in row]
        if run is not None and run.run_dir is not None:
            href = _relative(run.run_dir, link_runs[0])
            cells[0] = f"<a href='{_e(href)}'>{cells[0]}</a>"
        out.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</table>"


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()
