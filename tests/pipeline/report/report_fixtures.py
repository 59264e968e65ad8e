"""Synthetic run directories for the report tests (imported by them; not a test module): a double-descent-shaped sweep written in the
run-directory contract (config.yaml, metrics.jsonl, summary.json, planes/*.npz, state.json), with
no trainer involved."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import yaml

WIDTHS = (1, 2, 4, 8, 16, 32)
RATES = (0.0, 0.2)
SEEDS = (0, 1)
EPOCHS = 5
# Width at which the train error (noisy labels) first reaches 0, per noise rate.
THRESHOLD = {0.0: 4, 0.2: 8}
CLASSES = ("zero", "one", "two", "three")


def curve_values(width: int, rate: float) -> dict:
    """Final bare metric values with a double-descent shape: the test error peaks at THRESHOLD."""
    t = THRESHOLD[rate]
    train = max(0.0, (rate + 0.3) * (1 - math.log2(width) / math.log2(t)))
    test = 0.15 + rate * 0.5 + (0.25 + rate) * math.exp(-(math.log2(width) - math.log2(t)) ** 2)
    values = {
        "train/loss": train * 2 + 0.01, "train/error": train, "train/error_clean": train * 0.5,
        "test/loss": test * 3, "test/error": test, "model/params": 100 * width ** 2 + 10 * width,
        "model/width": width,
        "regions/train/mean": 2 + 20 * math.exp(-(math.log2(width) - math.log2(t)) ** 2),
        "regions/test/mean": 2 + 10 * math.exp(-(math.log2(width) - math.log2(t)) ** 2),
        "regions1d/mean": 1.5 + 3 * test,
        "repro/plane_agreement": 0.95 - 0.4 * math.exp(-(math.log2(width) - math.log2(t)) ** 2),
        "repro/test_disagreement": 0.4 * test, "repro/pd_l1": 0.3 * test,
    }
    if rate:
        values["train/memorized"] = max(0.0, 1 - train / (rate + 0.3))
        values["regions/mislabeled/mean"] = values["regions/train/mean"] + 3
    return values


def _config(width: int, rate: float, seeds, name: str, epochs: int) -> dict:
    families = ["train", "test"] + (["mislabeled"] if rate else [])
    return {
        "model": {"name": "mlpk", "width": width, "activation": "relu", "smelu_beta": 1.0, "depth": 2},
        "data": {"name": "digits", "root": None, "download": False, "n_train": 500, "subset_seed": 0,
                 "noise": {"kind": "symmetric", "rate": rate, "seed": 0},
                 "augment": {"crop": False, "flip": False, "pad": 4}},
        "train": {"epochs": epochs, "batch_size": 64, "optimizer": "adam", "lr": 0.001, "momentum": 0.9,
                  "weight_decay": 0.0, "schedule": "constant"},
        "seeds": list(seeds), "repro": {"vary": "init", "shuffle_window": None},
        "planes": {"every_n_epochs": 1, "families": families, "n_planes": 4, "resolution": 20},
        "regions1d": {"pairs": 10, "points": 50},
        "wandb": {"mode": None, "project": "ddsweep-test", "entity": None, "group": None, "tags": []},
        "output_dir": "runs", "run_name": name,
        "provenance": {"versions": {"python": "3.11"}, "git_commit": "abc", "command": "x", "created": "now"},
    }


def _with_seeds(values: dict, seeds, spread: float = 0.02) -> dict:
    """Bare values plus `/seed<N>` values spread symmetrically around them (so the mean is exact)."""
    out = dict(values)
    offsets = np.linspace(-spread, spread, len(seeds)) if len(seeds) > 1 else [0.0]
    for key, value in values.items():
        if key.startswith(("repro/", "model/")):
            continue
        for seed, off in zip(seeds, offsets):
            out[f"{key}/seed{seed}"] = value + off * max(abs(value), 1e-3)
    return out


def _plane(width: int, n_seeds: int, resolution: int = 20) -> dict:
    """A label map with stripes whose count grows with width; seed 1 is shifted by one column."""
    stripes = 1 + width % 5
    cols = (np.arange(resolution) * stripes // resolution) % len(CLASSES)
    labels = np.stack([np.tile(np.roll(cols, s), (resolution, 1)) for s in range(n_seeds)])  # [S, R, R]
    return {
        "labels": labels.astype(np.int64), "u": np.linspace(-1, 2, resolution),
        "v": np.linspace(-1, 2, resolution),
        "anchors": np.array([[0.0, 0.0], [1.0, 0.0], [0.4, 1.0]]),
        "anchor_labels": np.array([0, 1, 2]), "anchor_true": np.array([0, 1, 1]),
        "anchor_mislabeled": np.array([False, False, True]), "class_names": np.array(CLASSES),
    }


def write_run(run_dir: Path, width: int, rate: float, seeds=SEEDS, epochs: int = EPOCHS,
              status: str = "finished", metrics: bool = True, planes: bool = True,
              summary: bool = True, error=None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(_config(width, rate, seeds, run_dir.name, epochs), sort_keys=False))
    final = _with_seeds(curve_values(width, rate), seeds)
    if len(seeds) < 2:
        final = {k: v for k, v in final.items() if not k.startswith("repro/")}
    done = epochs if status == "finished" else max(1, epochs // 2)
    if metrics:
        lines = []
        for epoch in range(1, done + 1):
            # epoch-wise: the test error falls to its final value, with a bump at the middle epoch
            scale = 1 + 0.5 * (epochs - epoch) / epochs + (0.2 if epoch == (epochs + 1) // 2 else 0)
            record = {"epoch": epoch, "time": 0.1 * epoch}
            record.update({k: v * scale if k.startswith("test/error") else v for k, v in final.items()})
            lines.append(json.dumps(record))
        (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if summary:
        (run_dir / "summary.json").write_text(json.dumps({
            "status": status, "error": error, "epochs_completed": done,
            "metrics": final if metrics and status == "finished" else {},
            "run_name": run_dir.name, "elapsed_s": 1.0}))
    if planes:
        (run_dir / "planes").mkdir(exist_ok=True)
        for epoch in (1, done):
            np.savez(run_dir / "planes" / f"test_0_e{epoch:04d}.npz", **_plane(width, len(seeds)))
            np.savez(run_dir / "planes" / f"clean_class_1_e{epoch:04d}.npz", **_plane(width + 1, len(seeds)))
    return run_dir


def write_sweep(root: Path, widths=WIDTHS, rates=RATES, seeds=SEEDS, extra_points=()) -> Path:
    """A sweep directory: runs/<id>/ for every width × rate, state.json and sweep.yaml."""
    points = []
    for rate in rates:
        for width in widths:
            pid = f"w{width:03d}_n{rate:g}"
            write_run(root / "runs" / pid, width, rate, seeds)
            points.append({"id": pid, "params": {"model.width": width, "data.noise.rate": rate},
                           "run_dir": f"runs/{pid}", "status": "finished", "error": None})
    points += list(extra_points)
    (root / "state.json").write_text(json.dumps({"points": points}))
    (root / "sweep.yaml").write_text(yaml.safe_dump({
        "program": "ddsweep", "method": "grid", "command": ["ddsweep", "train", "${args}"],
        "parameters": {"data.noise.rate": {"values": list(rates)}, "model.width": {"values": list(widths)}}}))
    return root
