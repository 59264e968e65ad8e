"""Checkpoints at resume: a truncated, emptied, overwritten, bit-flipped or foreign `last.ckpt` is
detected with a message naming the file, and the run restarts from `prev.ckpt`; with both bad it
restarts from scratch, saying so. Either way the finished run equals an uninterrupted one."""
from __future__ import annotations

import random

import pytest
import torch
from faults_helpers import assert_same_run, copy_run, temporaries, train

EPOCHS = 3


def corrupt(path, kind: str, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    if kind == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(rng.randbytes(len(data)))
    elif kind == "bitflip":  # one byte of tensor data: torch.load reads it without complaint
        data[len(data) // 2] ^= 0x40
        path.write_bytes(bytes(data))
    elif kind == "foreign":  # a valid torch file, but not a checkpoint of this run
        torch.save({"state_dict": {"w": torch.zeros(3)}}, path)
    else:
        raise ValueError(kind)


KINDS = ["truncated", "empty", "garbage", "bitflip", "foreign"]


@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_last_checkpoint_resumes_from_prev(interrupted, tmp_path, capsys, kind, fault_log):
    reference, part = interrupted
    out, run = copy_run(part, tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    corrupt(last, kind, random.Random(kind))
    fault_log.fault(f"checkpoint {kind}")
    code, run = train(out, run.name)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    warnings = [line for line in captured.err.splitlines() if str(last) in line]
    assert len(warnings) == 1 and "trying an older one" in warnings[0], captured.err
    assert "Traceback" not in captured.err
    assert f"{run}: resuming after epoch 1 from prev.ckpt" in captured.out
    assert_same_run(run, reference, EPOCHS)
    assert not temporaries(out)
    fault_log.case()


def test_both_checkpoints_corrupt_restarts_from_scratch(interrupted, tmp_path, capsys, fault_log):
    reference, part = interrupted
    out, run = copy_run(part, tmp_path)
    last, prev = run / "checkpoints" / "last.ckpt", run / "checkpoints" / "prev.ckpt"
    rng = random.Random(1)
    corrupt(last, "truncated", rng)
    corrupt(prev, "garbage", rng)
    fault_log.fault("checkpoint truncated")
    fault_log.fault("checkpoint garbage")
    code, run = train(out, run.name)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert str(last) in captured.err and str(prev) in captured.err
    assert f"{run}: no usable checkpoint; starting from scratch" in captured.err
    assert "resuming" not in captured.out
    assert_same_run(run, reference, EPOCHS)
    assert not temporaries(out)
    fault_log.case()
