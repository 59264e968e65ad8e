"""metrics.jsonl losing rows that a checkpoint covers (cut short or emptied, after a crash): the
resume notices in one line, resumes from the newest checkpoint whose epochs are all still there
(else from scratch), and the finished run has every epoch exactly once with the metrics of an
uninterrupted run."""
from __future__ import annotations

import json

import pytest
from faults_helpers import assert_same_run, copy_run, train

EPOCHS = 3


def keep_rows(run, n: int) -> None:
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:n]))


@pytest.mark.parametrize("kept, resumed_from", [(1, "prev.ckpt"), (0, None)])
def test_lost_rows_are_redone_once(interrupted, tmp_path, capsys, fault_log, kept, resumed_from):
    reference, part = interrupted
    out, run = copy_run(part, tmp_path)
    keep_rows(run, kept)  # last.ckpt covers epochs 1-2, prev.ckpt epoch 1
    fault_log.fault("metrics rows lost")
    code, run = train(out, run.name)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    last = run / "checkpoints" / "last.ckpt"
    warnings = [line for line in captured.err.splitlines() if str(last) in line]
    assert len(warnings) == 1 and "metrics.jsonl does not hold each of its epochs 1..2" in warnings[0], captured.err
    if resumed_from:
        assert f"{run}: resuming after epoch 1 from {resumed_from}" in captured.out
    else:
        assert f"{run}: no usable checkpoint; starting from scratch" in captured.err
        assert "resuming" not in captured.out
    assert "Traceback" not in captured.err
    assert_same_run(run, reference, EPOCHS)
    fault_log.case()


def test_a_doubled_row_is_not_kept_twice(interrupted, tmp_path, capsys, fault_log):
    """Rows written twice (two writers before the run directory was locked) are not resumed over."""
    reference, part = interrupted
    out, run = copy_run(part, tmp_path)
    path = run / "metrics.jsonl"
    rows = path.read_text().splitlines(keepends=True)
    path.write_text(rows[0] + rows[0] + rows[1])
    code, run = train(out, run.name)
    assert code == 0, capsys.readouterr().err
    assert [json.loads(line)["epoch"] for line in path.read_text().splitlines()] == [1, 2, 3]
    assert_same_run(run, reference, EPOCHS)
    fault_log.case()
