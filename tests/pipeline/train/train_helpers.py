"""A tiny real run for the tests of pipeline/train: digits, a width-8 MLP, small measurements, no
pictures, W&B off; a fraction of a second per epoch once imported."""
from __future__ import annotations

from pathlib import Path

from run_files import rows, summary  # noqa: F401 - re-exported to the tests here

REPO = Path(__file__).resolve().parents[3]
TINY = ["--data.name=digits", "--model.name=mlpk", "--model.width=8", "--train.epochs=3",
        "--train.batch_size=256", "--planes.n_planes=3", "--planes.resolution=10",
        "--planes.agreement_triplets=4", "--planes.draw=0", "--regions1d.pairs=4", "--regions1d.points=10",
        "--wandb.mode=disabled"]


def train(out: Path, name: str, extra=()) -> tuple[int, Path]:
    """One real run in this process: (exit code, run directory)."""
    from ddsweep.pipeline.config import load_config
    from ddsweep.pipeline.train.run import train_run

    cfg = load_config(overrides=[*TINY, *extra, f"--output_dir={out}", f"--run_name={name}"])
    return train_run(cfg, verbose=False), Path(out) / name


def checkpoint_epoch(run_dir: Path, name: str = "last.ckpt") -> int:
    import torch

    ckpt = torch.load(Path(run_dir) / "checkpoints" / name, map_location="cpu", weights_only=True)
    return int(ckpt["ddsweep"]["epochs_completed"])


def weights(run_dir: Path) -> dict:
    import torch

    return torch.load(Path(run_dir) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
