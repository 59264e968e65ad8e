"""Measurement does not follow the training precision: a run trained under bf16 autocast logs the
regions and label maps that its own checkpoint gives in fp32, outside any autocast; with
`planes.precision=bf16` (recorded in the run's config) the measurement runs under bf16 autocast."""
import json

import numpy as np
import pytest
import torch
import yaml

from bench.gpu_check import write_cifar_files
from ddsweep.pipeline.cli import main
from ddsweep.pipeline.cli.plane import load_run
from ddsweep.pipeline.measure.evaluate import as_logits_fn
from ddsweep.pipeline.measure.planes import predict_planes
from ddsweep.pipeline.measure.regions import count_regions_batch, segment_counts
from ddsweep.pipeline.train import measurement as M

# mlpk k=64 (on the flattened images) after one epoch: enough boundaries on these planes that bf16
# autocast moves some pixels of its label maps (checked below), so an fp32 equality tells the two
# apart (a conv family needs seconds per recomputation on a CPU where this needs 0.1 s).
ARGS = ["--model.name=mlpk", "--model.width=64", "--data.name=cifar10", "--train.epochs=1",
        "--train.batch_size=16", "--seeds=[0,1]", "--train.precision=bf16-mixed", "--planes.families=[train,test]",
        "--planes.n_planes=3", "--planes.resolution=24", "--planes.agreement_triplets=3", "--planes.draw=3",
        "--planes.draw_resolution=24",
        "--regions1d.pairs=3", "--regions1d.points=16", "--wandb.mode=disabled", "--quiet", "--run_name=run"]


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    return write_cifar_files(tmp_path_factory.mktemp("cifar"), "cifar10", n_train=40, n_test=16, seed=1)


def trained(root, out, *extra):
    assert main(["train", *ARGS, f"--data.root={root}", f"--output_dir={out}", *extra]) == 0
    run = out / "run"
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    return run, row, load_run(run, run / "checkpoints" / "last.ckpt")


def recomputed(loaded, amp_dtype, device="cpu") -> dict:
    """The run's measurement, from its checkpoint, on `device`: name/seed<N> → value (as logged)."""
    cfg, dataset, labels, net, _ = loaded
    indices = M.draw_indices(cfg, dataset, labels, len(cfg.seeds))
    fn, p = as_logits_fn(net.to(device)), cfg.planes
    kw = dict(max_points_per_call=p.max_points_per_call, amp_dtype=amp_dtype)
    out = {}
    for fam in p.families:
        anchors = (dataset.x_test if fam == "test" else dataset.x_train)[indices[f"planes/{fam}"]].to(device)
        counts = count_regions_batch(predict_planes(fn, anchors, p.resolution, p.margin, **kw))  # [S, T]
        out.update({f"regions/{fam}/mean/seed{s}": float(c) for s, c in zip(cfg.seeds, counts.double().mean(1))})
    pairs = dataset.x_train[indices["pairs1d"]].to(device)
    counts = segment_counts(fn, pairs[:, 0], pairs[:, 1], cfg.regions1d.points, **kw)
    out.update({f"regions1d/mean/seed{s}": float(c) for s, c in zip(cfg.seeds, counts.double().mean(1))})
    return out


def test_bf16_training_measures_in_fp32(cifar_root, tmp_path):
    run, row, loaded = trained(cifar_root, tmp_path)
    assert json.loads((run / "summary.json").read_text())["device"]["precision"] == "bf16-mixed"
    assert yaml.safe_load((run / "config.yaml").read_text())["planes"]["precision"] == "32"
    fp32 = recomputed(loaded, amp_dtype=None)
    assert {k: row[k] for k in fp32} == fp32
    # the drawn label maps too: every saved npz equals the checkpoint's fp32 maps, and bf16 autocast
    # would have moved some of their pixels
    cfg, dataset, labels, net, _ = loaded
    indices = M.draw_indices(cfg, dataset, labels, len(cfg.seeds))
    moved = 0
    for fam in cfg.planes.families:
        anchors = (dataset.x_test if fam == "test" else dataset.x_train)[indices[f"planes/{fam}"]]
        maps = {dtype: predict_planes(as_logits_fn(net), anchors, cfg.planes.draw_resolution, cfg.planes.draw_margin,
                                      amp_dtype=dtype) for dtype in (None, torch.bfloat16)}  # [S, T, R, R]
        for t in range(cfg.planes.draw):
            saved = np.load(run / "planes" / f"{fam}_{t}_e0001.npz")["labels"]  # [S, R, R]
            assert np.array_equal(saved, maps[None][:, t].numpy())
            moved += int((maps[torch.bfloat16][:, t].numpy() != saved).sum())
    assert moved > 0


def test_bf16_measurement_is_recorded_and_autocast(cifar_root, tmp_path, monkeypatch):
    seen = []
    real = M.predict_planes

    def spy(*args, **kwargs):
        seen.append((kwargs.get("amp_dtype"), torch.is_autocast_enabled("cpu")))
        return real(*args, **kwargs)

    monkeypatch.setattr(M, "predict_planes", spy)
    run, row, loaded = trained(cifar_root, tmp_path, "--planes.precision=bf16")
    assert yaml.safe_load((run / "config.yaml").read_text())["planes"]["precision"] == "bf16"
    assert seen and all(dtype is torch.bfloat16 and not outside for dtype, outside in seen)
    bf16 = recomputed(loaded, amp_dtype=torch.bfloat16)
    assert {k: row[k] for k in bf16} == bf16
