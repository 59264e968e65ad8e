"""Start-up cost of one sweep point before its first step: the imports of `ddsweep train` and the
data (source, label noise, checks), each in a fresh process as the local engine starts a point.
`cold` is a point with an empty dataset cache (what every point paid before the cache: MNIST-1D
regenerated each time), `warm` a point that finds the dataset cached.

    python bench/startup_cost.py [--preset sweeps/mnist1d_mlp.yaml] [--repeats 3]

Prints wall and CPU seconds per phase, the fastest of the repeats, and last one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

# Run in the child: the same imports and data preparation `ddsweep train` does before fit.
CHILD = """
import json, resource, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t0, c0 = time.perf_counter(), cpu()
from ddsweep.pipeline.config import load_config
from ddsweep.pipeline.train.run import prepare_data
import lightning, ddsweep.pipeline.train.epoch, ddsweep.pipeline.train.module, ddsweep.pipeline.train.trainer, ddsweep.data.module
t1, c1 = time.perf_counter(), cpu()
prepare_data(load_config(overrides=json.loads(sys.argv[1])))
t2, c2 = time.perf_counter(), cpu()
print(json.dumps({"import_s": t1 - t0, "import_cpu_s": c1 - c0, "data_s": t2 - t1, "data_cpu_s": c2 - c1}))
"""


def point_overrides(preset: Path) -> dict:
    """The preset's fixed values and the first of each list: its first point."""
    params = yaml.safe_load(preset.read_text())["parameters"]
    point = {k: v["value"] if "value" in v else v["values"][0] for k, v in params.items()}
    return {**point, "wandb.mode": "disabled"}


def measure(overrides: dict, cache: Path) -> dict:
    env = {**os.environ, "DDSWEEP_CACHE": str(cache), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(overrides)], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=str(REPO / "sweeps" / "mnist1d_mlp.yaml"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    overrides = point_overrides(Path(args.preset))
    results = {"cold": [], "warm": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            results["cold"].append(measure(overrides, Path(tmp)))  # generates and writes the cache
            results["warm"].append(measure(overrides, Path(tmp)))  # reads it
    best = {kind: {key: min(r[key] for r in runs) for key in runs[0]} for kind, runs in results.items()}
    for kind, b in best.items():
        print(f"{kind}: imports {b['import_s']:.2f} s ({b['import_cpu_s']:.2f} s CPU), "
              f"data {b['data_s']:.2f} s ({b['data_cpu_s']:.2f} s CPU)")
    print(json.dumps({"preset": args.preset, "repeats": args.repeats, **best}))


if __name__ == "__main__":
    main()
