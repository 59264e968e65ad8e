"""`make gpu-check`: accept the GPU path of ddsweep on one CUDA GPU (an H100/H200) in at most 8 minutes.

Steps, each timed and passed or failed on its own (a failing step never stops the others):
  pytest     the gpu-marked tests (`pytest -m gpu`);
  bench      `make bench` on the ResNet18-k grid, bounded: widths 1, 16, 64, both noise levels,
             10,000 synthetic images, 1 warm-up + 1 timed epoch (bench/bench_sweep.py);
  measure    bench/bench_measure.py on the same widths (measurement overhead at the preset schedule);
  smoke      a 2-epoch `ddsweep train` of each CIFAR preset's (sweeps/*.yaml on cifar10/cifar100)
             first and last width at the preset's own measurement density (planes, triplets,
             agreement, 1-D pairs; the last epoch always measures), its first value of every other
             list, on synthetic files in the real CIFAR on-disk format written to a temp dir.

    python bench/gpu_check.py                       # on a CUDA machine (what `make gpu-check` runs)
    python bench/gpu_check.py --allow-cpu --tiny    # the same steps shrunk, on a CPU (a smoke test)
    python bench/gpu_check.py --steps smoke         # only some steps

Without a CUDA device it refuses in one line unless --allow-cpu. The last line is one JSON object:
device, torch's TF32 settings, per step pass and seconds and the step's own figures (the
benchmarks' JSON, each smoke run's epoch seconds and measured values), total_s, within_budget
(total_s <= 480) and pass.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python bench/gpu_check.py` from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 480
STEPS = ("pytest", "bench", "measure", "smoke")
CIFAR_SOURCES = ("cifar10", "cifar100")
# The bounded `make bench` / bench_measure selection (GPU), and their --quick forms (--tiny).
BENCH_ARGS = ["--grid", "resnet18k", "--widths", "1,16,64", "--train-size", "10000", "--epochs", "1",
              "--warmup", "1", "--repeats", "1"]
MEASURE_ARGS = ["--grid", "resnet18k", "--widths", "1,64", "--train-size", "10000", "--repeats", "1"]
TINY_BENCH_ARGS = ["--quick", "--widths", "1"]
SMOKE_IMAGES = (2560, 1000)  # train, test: enough for 1,000 triplets of three distinct classes
TINY_SMOKE = {"planes.n_planes": 2, "planes.resolution": 6, "planes.agreement_triplets": 2, "planes.draw": 1,
              "planes.draw_resolution": 8, "regions1d.pairs": 2, "regions1d.points": 8, "train.batch_size": 32}
TINY_MARGIN = {"margin.points": 2, "margin.directions": 2, "margin.steps": 4}  # for presets that measure margins


# ----------------------------------------------------------------------------- CIFAR files

def write_cifar_files(root: str | Path, name: str, *, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Random images and balanced labels in the on-disk format `data.load_source(name)` reads (the
    python-pickle batches of cifar-10-batches-py/ or cifar-100-python/: uint8 rows of 3,072 values,
    the R, G and B planes each 32x32 row-major, bytes keys as the original files have them)."""
    if name not in CIFAR_SOURCES:
        raise ValueError(f"{name}: not one of {', '.join(CIFAR_SOURCES)}")
    rng = np.random.default_rng(seed)
    classes = 10 if name == "cifar10" else 100

    def batch(n: int, key: str) -> dict:
        labels = rng.permutation(np.arange(n) % classes).tolist()
        return {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), key.encode(): labels}

    root = Path(root)
    if name == "cifar10":
        base = root / "cifar-10-batches-py"
        sizes = [n_train // 5 + (i < n_train % 5) for i in range(5)]
        files = {f"data_batch_{i + 1}": batch(n, "labels") for i, n in enumerate(sizes)}
        files["test_batch"] = batch(n_test, "labels")
    else:
        base = root / "cifar-100-python"
        files = {"train": batch(n_train, "fine_labels"), "test": batch(n_test, "fine_labels")}
    base.mkdir(parents=True, exist_ok=True)
    for file, content in files.items():
        (base / file).write_bytes(pickle.dumps(content, protocol=2))
    return root


# ----------------------------------------------------------------------------- steps

def _last_json(text: str) -> dict | None:
    lines = [line for line in text.strip().splitlines() if line.startswith("{")]
    try:
        return json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None


def run_script(argv: list[str], timeout_s: float) -> dict:
    """A subprocess step: pass when it exits 0 (and, for a benchmark, ends with a JSON line)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
           "WANDB_MODE": "disabled"}
    start = time.perf_counter()
    try:
        res = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=timeout_s)
        code, out = res.returncode, res.stdout + res.stderr
    except subprocess.TimeoutExpired as err:
        code, out = None, f"timed out after {timeout_s:.0f} s: {err.stdout or ''}"
    out = out if isinstance(out, str) else out.decode(errors="replace")
    return {"pass": code == 0, "exit": code, "seconds": round(time.perf_counter() - start, 2),
            "figures": _last_json(out), "tail": None if code == 0 else out.strip()[-600:]}


def pytest_step(tiny: bool) -> dict:
    if tiny:  # collecting the whole suite costs more than the shrunk check itself; nothing is gpu-marked-only here
        return {"pass": True, "skipped": "tiny"}
    res = run_script(["-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"], timeout_s=180)
    res["pass"] = res["exit"] in (0, 5)  # 5: no test selected
    return res


def bench_step(script: str, args: list[str], timeout_s: float) -> dict:
    res = run_script([f"bench/{script}", *args], timeout_s)
    res["pass"] = res["pass"] and res["figures"] is not None
    return res


def preset_points(tiny: bool) -> list[tuple[str, dict]]:
    """(preset name, point) for the first and last width of every CIFAR preset (first value of
    every other list); --tiny: the first width only, at a width of at most 2."""
    import yaml

    from bench import harness as H

    out = []
    for path in sorted((ROOT / "sweeps").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        grid = H.grid_from_parameters(raw["parameters"], str(path))
        if grid.fixed.get("data.name") not in CIFAR_SOURCES:
            continue
        widths = grid.widths
        widths = [min(widths[0], 2)] if tiny else sorted({widths[0], widths[-1]}, key=widths.index)
        for point in grid.restricted(widths, first_only=True).points():
            out.append((path.stem, point))
    return out


def _arg(key: str, value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)  # lists, numbers, true/false: YAML reads JSON
    return f"--{key}={text}"


def smoke_run(name: str, point: dict, data_root: Path, out: Path, tiny: bool) -> dict:
    """One 2-epoch `ddsweep train` of a preset point (in this process, through the CLI's entry point)."""
    from ddsweep.pipeline.cli import main

    n_train, n_test = (64, 32) if tiny else SMOKE_IMAGES
    root = data_root / point["data.name"]
    if not root.exists():
        write_cifar_files(root, point["data.name"], n_train=n_train, n_test=n_test)
    overrides = {**point, "data.root": str(root), "data.download": False, "data.n_train": None,
                 "train.epochs": 2, "wandb.mode": "disabled", "output_dir": str(out),
                 "run_name": f"{name}-k{point['model.width']}"}
    if tiny:
        overrides.update(TINY_SMOKE)
        if point.get("margin.points"):
            overrides.update(TINY_MARGIN)
    args = ["train", "--quiet"] + [_arg(k, v) for k, v in overrides.items() if v is not None]
    run_dir = out / overrides["run_name"]
    start = time.perf_counter()
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
        try:
            code = main(args)
        except Exception as err:  # noqa: BLE001 - a crash fails this run, not the check
            print(f"{type(err).__name__}: {err}", file=stderr)
            code = 1
    seconds = time.perf_counter() - start
    release_memory()
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    metrics = summary.get("metrics") or {}
    lines = (run_dir / "metrics.jsonl").read_text().splitlines() if (run_dir / "metrics.jsonl").exists() else []
    times = [0.0] + [json.loads(line)["time"] for line in lines]  # seconds since training started
    keep = ("test/error", "regions/train/mean", "regions1d/mean", "repro/plane_agreement")
    finite = all(math.isfinite(metrics[k]) for k in keep if isinstance(metrics.get(k), (int, float)))
    return {"pass": code == 0 and summary.get("status") == "finished" and finite, "seconds": round(seconds, 2),
            "epoch_s": [round(b - a, 3) for a, b in zip(times, times[1:])], "device": summary.get("device"),
            **{k: metrics.get(k) for k in keep},
            "error": summary.get("error") or stderr.getvalue().strip()[-400:] or None}


def release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def smoke_step(tiny: bool) -> dict:
    start = time.perf_counter()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="ddsweep-gpu-check-") as tmp:
        for name, point in preset_points(tiny):
            key = f"{name}/k{point['model.width']}"
            runs[key] = smoke_run(name, point, Path(tmp) / "data", Path(tmp) / "runs", tiny)
    return {"pass": bool(runs) and all(r["pass"] for r in runs.values()),
            "seconds": round(time.perf_counter() - start, 2), "runs": runs}


# ----------------------------------------------------------------------------- main

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--allow-cpu", action="store_true", help="run without a CUDA device (shrink it with --tiny)")
    p.add_argument("--tiny", action="store_true", help="every step on tiny sizes: a smoke test of this script")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    args = p.parse_args(argv)
    args.steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    bad = [s for s in args.steps if s not in STEPS]
    if bad or not args.steps:
        p.error(f"--steps: {','.join(bad) or 'empty'} is not a step; choose from {','.join(STEPS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu_check: no CUDA device (run it on the GPU machine, or pass --allow-cpu for a CPU run)",
              file=sys.stderr)
        return 2
    from bench import harness as H

    start = time.perf_counter()
    bench_args = TINY_BENCH_ARGS if args.tiny else BENCH_ARGS
    measure_args = TINY_BENCH_ARGS if args.tiny else MEASURE_ARGS
    steps = {"pytest": lambda: pytest_step(args.tiny),
             "bench": lambda: bench_step("bench_sweep.py", bench_args, timeout_s=240),
             "measure": lambda: bench_step("bench_measure.py", measure_args, timeout_s=150),
             "smoke": lambda: smoke_step(args.tiny)}
    # cuDNN runs fp32 convolutions in TF32 unless told otherwise: recorded, since "fp32 measurement"
    # on a GPU means these settings
    result: dict = {"device": H.device_name(), "tiny": args.tiny, "torch": torch.__version__,
                    "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                    "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32}
    for name in args.steps:
        print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
        result[name] = steps[name]()
        print(f"gpu_check: {name}: {'pass' if result[name]['pass'] else 'FAIL'}"
              f" ({result[name].get('seconds', 0)} s)", file=sys.stderr, flush=True)
    total = time.perf_counter() - start
    result.update(total_s=round(total, 2), within_budget=total <= BUDGET_S,
                  steps_passed={s: result[s]["pass"] for s in args.steps})
    result["pass"] = all(result["steps_passed"].values()) and (args.tiny or result["within_budget"])
    H.emit_json(result)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
