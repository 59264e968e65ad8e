"""Projected measurement cost of a preset, counted, not timed: measurement epochs (the preset's
`planes.schedule`) x grid points per measurement x forward FLOPs per image (torch's FlopCounterMode
on the preset's own network at each width, one copy), against the training FLOPs (epochs x train
images x 3 forwards' worth for forward + backward). Seeds multiply both alike, so they cancel in
the ratio; the totals count them.

    python bench/measure_cost.py sweeps/somepalli2022_resnet18k.yaml [more presets...]

Prints one table row per preset (the format of bench/RESULTS.md) and, last, one JSON line.
"""
from __future__ import annotations

import json
import sys

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

CIFAR_TRAIN = 50_000
IN_SHAPE, CLASSES = (3, 32, 32), 10  # every preset measured here is CIFAR-10


def measurement_epochs(planes: dict, epochs: int) -> list[int]:
    from ddsweep.pipeline.train.measurement import log_epochs

    if planes.get("schedule", "linear") == "log":
        return log_epochs(epochs, planes.get("log_points", 50))
    every = planes.get("every_n_epochs", 1)
    return sorted(set(range(every, epochs + 1, every)) | {epochs})


def forward_flops(model: dict, width: int) -> int:
    from ddsweep.pipeline.config import load_config
    from ddsweep.pipeline.train.network import build_network

    cfg = load_config(overrides={**model, "model.width": width, "wandb.mode": "disabled"})
    net = build_network(cfg.model, in_shape=IN_SHAPE, num_classes=CLASSES, init_seeds=[0], fuse=True).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 1, *IN_SHAPE))  # [S=1, B=1, C, H, W]
    return counter.get_total_flops()


def preset_cost(path: str) -> dict:
    spec = yaml.safe_load(open(path))
    params = spec["parameters"]
    fixed = {k: v["value"] for k, v in params.items() if "value" in v}
    widths = params["model.width"]["values"]
    noise_levels = len(params.get("data.noise.rate", {}).get("values", [None]))
    planes = {k.removeprefix("planes."): v for k, v in fixed.items() if k.startswith("planes.")}
    epochs, seeds = fixed["train.epochs"], len(fixed.get("seeds", [0, 1]))
    families = len(planes.get("families", ["train", "test"]))
    n_planes, res = planes.get("n_planes", 20), planes.get("resolution", 50)
    agreement = planes.get("agreement_triplets", 100) if seeds > 1 else 0
    points = (families * n_planes + agreement) * res ** 2 + fixed.get("regions1d.pairs", 100) * fixed.get(
        "regions1d.points", 200)
    model = {k: v for k, v in fixed.items() if k.startswith("model.")}
    flops = {k: forward_flops(model, k) for k in widths}
    linear = measurement_epochs({**planes, "schedule": "linear"}, epochs)
    chosen = measurement_epochs(planes, epochs)
    per_run_flops = sum(flops.values())  # one noise level, one seed, summed over widths
    measure = len(chosen) * points * per_run_flops * seeds * noise_levels
    train = epochs * CIFAR_TRAIN * 3 * per_run_flops * seeds * noise_levels
    return {"preset": path, "epochs": epochs, "measurement_epochs": len(chosen),
            "linear_measurement_epochs": len(linear), "planes": families * n_planes + agreement,
            "resolution": res, "points_per_measurement": points,
            "gflop_per_image": {str(k): round(v / 1e9, 4) for k, v in flops.items()},
            "measure_pflop": measure / 1e15, "train_pflop": train / 1e15,
            "measure_over_train": measure / train, "linear_measure_over_train": len(linear) * points * 1.0 /
            (epochs * CIFAR_TRAIN * 3)}


def main(paths: list[str]) -> None:
    rows = [preset_cost(p) for p in paths]
    print("| preset | measurement epochs (linear before) | planes x R^2 + 1-D points | measurement PFLOP | "
          "training PFLOP | measurement / training (linear before) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['preset']} | {r['measurement_epochs']} ({r['linear_measurement_epochs']}) | "
              f"{r['planes']} x {r['resolution']}^2 + 1-D = {r['points_per_measurement']:,} | "
              f"{r['measure_pflop']:,.0f} | {r['train_pflop']:,.0f} | "
              f"{r['measure_over_train']:.2f} ({r['linear_measure_over_train']:.2f}) |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
