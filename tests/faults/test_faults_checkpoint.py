"""Checkpoints at resume: a truncated, emptied, overwritten, bit-flipped or foreign `last.ckpt` is
detected with a message naming the file, and the run restarts from `prev.ckpt`; with both bad it
restarts from scratch, saying so. Either way the finished run equals an uninterrupted one. The same
holds with checkpoints/digests.json deleted: each checkpoint carries the run's config hash and a
digest of its own tensors, and its weights are checked against the network before Lightning loads
them (a flipped tensor byte, a checkpoint of another width)."""
from __future__ import annotations

import random
import shutil

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


def flip_tensor_byte(path, rng: random.Random) -> None:
    """Flip one byte inside the bytes of a weight tensor of the checkpoint file (found by content:
    torch's zip format stores tensor bytes uncompressed)."""
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    weight = next(v for k, v in state.items() if k.endswith("weight"))
    raw = weight.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
    data = bytearray(path.read_bytes())
    start = data.find(raw)
    assert start >= 0 and data.find(raw, start + 1) < 0
    data[start + rng.randrange(len(raw))] ^= 0x10
    path.write_bytes(bytes(data))


def test_bitflip_without_digests_resumes_from_prev(interrupted, tmp_path, capsys, fault_log):
    """With checkpoints/digests.json gone the checkpoint's own stored digest still finds the flip."""
    reference, part = interrupted
    out, run = copy_run(part, tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    (run / "checkpoints" / "digests.json").unlink()
    flip_tensor_byte(last, random.Random(0))
    fault_log.fault("checkpoint tensor bitflip, no digests")
    code, run = train(out, run.name)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    warnings = [line for line in captured.err.splitlines() if str(last) in line]
    assert len(warnings) == 1 and "do not match the digest stored in it" in warnings[0], captured.err
    assert f"{run}: resuming after epoch 1 from prev.ckpt" in captured.out
    assert_same_run(run, reference, EPOCHS)
    fault_log.case()


@pytest.fixture(scope="module")
def other_width(tmp_path_factory):
    """The last checkpoint of a 2-epoch run of another width (12 instead of 8)."""
    root = tmp_path_factory.mktemp("other_width")
    code, run = train(root, "other", extra=["--model.width=12", "--train.epochs=2"])
    assert code == 0
    return run / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("digests", [True, False])
def test_checkpoint_of_another_width_falls_back_in_one_line(interrupted, other_width, tmp_path, capsys, digests,
                                                            fault_log):
    reference, part = interrupted
    out, run = copy_run(part, tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    shutil.copyfile(other_width, last)
    if not digests:
        (run / "checkpoints" / "digests.json").unlink()
    fault_log.fault("checkpoint of another run")
    code, run = train(out, run.name)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err and "state_dict" not in captured.err
    warnings = [line for line in captured.err.splitlines() if str(last) in line]
    assert len(warnings) == 1 and "trying an older one" in warnings[0], captured.err
    if not digests:
        assert "written by a run of another config" in warnings[0]
    assert f"{run}: resuming after epoch 1 from prev.ckpt" in captured.out
    assert_same_run(run, reference, EPOCHS)
    fault_log.case()


def test_weights_that_do_not_fit_are_refused_before_lightning_loads_them(interrupted, other_width, tmp_path,
                                                                         capsys, fault_log):
    """A checkpoint that claims this run's config and digest but holds weights of another shape
    (the load check, the last line of defence) falls back in one line instead of Lightning's
    multi-line state_dict error."""
    from ddsweep.pipeline.train.epoch import state_digest

    reference, part = interrupted
    out, run = copy_run(part, tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    own = torch.load(last, map_location="cpu", weights_only=True)["ddsweep"]
    foreign = torch.load(other_width, map_location="cpu", weights_only=True)
    foreign["ddsweep"] = {**own, "state_digest": state_digest(foreign)}
    torch.save(foreign, last)
    (run / "checkpoints" / "digests.json").unlink()
    code, run = train(out, run.name)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    warnings = [line for line in captured.err.splitlines() if str(last) in line]
    assert len(warnings) == 1 and "its weights do not fit this network" in warnings[0], captured.err
    assert_same_run(run, reference, EPOCHS)
    fault_log.case()


def test_fit_problem_names_missing_keys_and_shapes():
    from ddsweep.pipeline.train.epoch import fit_problem

    expected = {"a": torch.Size([2, 3]), "b": torch.Size([2])}
    assert fit_problem({"a": torch.zeros(2, 3), "b": torch.zeros(2)}, expected) is None
    assert "1 missing keys, 0 unexpected" in fit_problem({"a": torch.zeros(2, 3)}, expected)
    assert "a: [2, 4] here [2, 3]" in fit_problem({"a": torch.zeros(2, 4), "b": torch.zeros(2)}, expected)
    assert fit_problem(None, expected) == "it holds no state_dict"


def test_state_digest_sees_one_changed_value_and_ignores_its_own_entry():
    from ddsweep.pipeline.train.epoch import state_digest

    ckpt = {"state_dict": {"w": torch.arange(6.0).reshape(2, 3)}, "optimizer_states": [{"state": {0: {"step": 3}}}]}
    reference = state_digest(ckpt)
    assert state_digest({**ckpt, "ddsweep": {"epochs_completed": 2}}) == reference
    w = torch.arange(6.0).reshape(2, 3)
    w[1, 2] = 5.5
    assert state_digest({**ckpt, "state_dict": {"w": w}}) != reference
    assert state_digest({**ckpt, "optimizer_states": [{"state": {0: {"step": 4}}}]}) != reference
    assert state_digest({"state_dict": {"w": torch.arange(6.0).reshape(3, 2)}, **{
        k: v for k, v in ckpt.items() if k != "state_dict"}}) != reference  # same bytes, other shape
