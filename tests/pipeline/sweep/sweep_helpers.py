"""Shared helpers of the sweep tests (the fake training program, state readers)."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

FAKE_TRAIN = textwrap.dedent('''
    """Fake `ddsweep train`: --key=value args, writes <output_dir>/<run_name>/summary.json.

    FAKE_LOG: file that gets "start <run>" and "finish <run>" lines; FAKE_SLEEP: seconds of
    "training"; FAKE_FAIL_WIDTH / FAKE_DIVERGE_WIDTH: model.width values that fail (exit 1) or
    diverge (exit 3)."""
    import json, os, sys, time

    args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    run_dir = os.path.join(args["output_dir"], args["run_name"])
    summary = os.path.join(run_dir, "summary.json")

    def write_summary(status, error=None, metrics=None):
        tmp = summary + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"status": status, "error": error, "epochs_completed": 1, "metrics": metrics or {}}, f)
        os.replace(tmp, summary)

    def note(event):
        if os.environ.get("FAKE_LOG"):
            with open(os.environ["FAKE_LOG"], "a") as f:
                f.write(f"{event} {args['run_name']}\\n")

    if os.path.exists(summary) and json.load(open(summary))["status"] == "finished":
        print("already finished")
        sys.exit(0)
    os.makedirs(run_dir, exist_ok=True)
    note("start")
    write_summary("running")
    with open(os.path.join(run_dir, "argv.json"), "w") as f:
        json.dump(sys.argv[1:], f)
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    width = args.get("model.width", "1")
    if width == os.environ.get("FAKE_FAIL_WIDTH"):
        write_summary("failed", "RuntimeError: boom")
        print("Traceback (most recent call last):\\nRuntimeError: boom", file=sys.stderr)
        sys.exit(1)
    if width == os.environ.get("FAKE_DIVERGE_WIDTH"):
        write_summary("diverged", "loss is nan at epoch 1")
        sys.exit(3)
    error = 1.0 / (float(width) + 1) + float(args.get("data.noise.rate", 0))
    write_summary("finished", metrics={"test/error": round(error, 6), "train/loss": 0.5})
    note("finish")
''')


GRID = {"model.width": {"values": [1, 2, 4]}, "data.noise.rate": {"values": [0.0, 0.2]}}


def read_state(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "state.json").read_text())


def statuses(sweep_dir: Path) -> dict:
    return {p["id"]: p["status"] for p in read_state(sweep_dir)["points"]}


def final_metrics(sweep_dir: Path) -> dict:
    out = {}
    for run in sorted((sweep_dir / "runs").iterdir()):
        out[run.name] = json.loads((run / "summary.json").read_text())["metrics"]
    return out
