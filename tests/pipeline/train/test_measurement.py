"""The measurement callback logs what the pure functions compute on the run's own triplets."""
import json

import torch

from ddsweep.pipeline.config import load_config
from ddsweep.pipeline.measure.evaluate import as_logits_fn
from ddsweep.pipeline.measure.regions import summarize, triangle_counts
from ddsweep.pipeline.train.measurement import draw_indices
from ddsweep.pipeline.cli.plane import find_run, load_run
from ddsweep.pipeline.train.run import train_run

TINY = ["--data.name=digits", "--model.name=mlpk", "--model.width=6", "--train.epochs=2",
        "--train.batch_size=512", "--data.noise.rate=0.2", "--planes.n_planes=3", "--planes.resolution=16",
        "--planes.agreement_triplets=0", "--planes.draw=0", "--regions1d.pairs=0", "--wandb.mode=disabled"]


def test_triangle_counts_are_logged_for_the_runs_own_triplets(tmp_path):
    cfg = load_config(overrides=[*TINY, "--planes.triangles=true", f"--output_dir={tmp_path}", "--run_name=t"])
    assert train_run(cfg, verbose=False) == 0
    rows = [json.loads(line) for line in (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    cfg, dataset, labels, net, _ = load_run(*find_run(str(tmp_path / "t")))
    idx = draw_indices(cfg, dataset, labels, len(cfg.seeds))["planes/train"]
    x = dataset.x_train[idx]  # [T, 3, *shape]
    expected = summarize(triangle_counts(as_logits_fn(net), x[:, 0], x[:, 1], x[:, 2], 16))
    for stat in ("mean", "median", "std"):
        for s, seed in enumerate(cfg.seeds):
            assert last[f"regions2d/train/{stat}/seed{seed}"] == expected[stat][s].item(), stat
    assert last["regions2d/test/mean"] >= 1


def test_triangles_are_off_by_default(tmp_path):
    cfg = load_config(overrides=[*TINY, "--train.epochs=1", f"--output_dir={tmp_path}", "--run_name=d"])
    assert train_run(cfg, verbose=False) == 0
    row = json.loads((tmp_path / "d" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "regions/train/mean" in row and not any(k.startswith("regions2d/") for k in row)


def test_each_draw_has_its_own_stream():
    """Adding a triplet family (or turning the 1-D count off) leaves every other draw unchanged."""
    from ddsweep.pipeline.train.run import prepare_data

    base = [*TINY, "--planes.agreement_triplets=5", "--regions1d.pairs=4"]
    draws = {}
    for name, extra in {"one": ["--planes.families=[train]"], "two": ["--planes.families=[test,train]"],
                        "no1d": ["--planes.families=[train]", "--regions1d.pairs=0"]}.items():
        cfg = load_config(overrides=[*base, *extra])
        dataset, labels, _ = prepare_data(cfg)
        draws[name] = draw_indices(cfg, dataset, labels, len(cfg.seeds))
    one, two, no1d = draws["one"], draws["two"], draws["no1d"]
    for key in ("planes/train", "agreement", "pairs1d"):
        assert torch.equal(one[key], two[key]), key
    assert torch.equal(one["agreement"], no1d["agreement"]) and "pairs1d" not in no1d
    assert not torch.equal(one["planes/train"][:, :2], one["agreement"][:5, :2])  # distinct streams
