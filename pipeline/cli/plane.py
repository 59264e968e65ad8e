"""`ddsweep plane`: draw decision planes at figure resolution from saved runs, and montages across runs.

The planes are the run's own: triplets are redrawn from the run's `planes.seed` exactly as the
measurement callback drew them, so index i here is plane i of the run's pictures and metrics.
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import torch

from ddsweep.errors import OneLineParser, UserError


def find_run(path: str) -> tuple[Path, Path]:
    """A run directory or a checkpoint file → (run directory, checkpoint)."""
    p = Path(path)
    if p.is_file():
        run = p.parent.parent
        ckpt = p
    else:
        run = p
        ckpt = p / "checkpoints" / "last.ckpt"
    if not (run / "config.yaml").is_file():
        raise UserError(f"{path}: not a run directory or checkpoint (no config.yaml in {run})")
    if not ckpt.is_file():
        raise UserError(f"{path}: no checkpoint at {ckpt}")
    return run, ckpt


def load_run(run: Path, ckpt: Path):
    """(cfg, dataset, labels, network with the checkpoint's weights, epochs completed)."""
    from ddsweep.pipeline.config import from_dict, validate
    from ddsweep.pipeline.train.network import build_network, seed_streams
    from ddsweep.pipeline.store.rundir import RunDir
    from ddsweep.pipeline.train.run import prepare_data

    cfg = from_dict(RunDir(run).saved_config())
    validate(cfg)
    dataset, labels, _ = prepare_data(cfg)
    init_seeds, _ = seed_streams(cfg.seeds, cfg.repro.vary)
    net = build_network(cfg.model, in_shape=dataset.in_shape, num_classes=dataset.num_classes,
                        init_seeds=init_seeds, fuse=cfg.train.fuse_seeds)
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        weights = {k.removeprefix("net."): v for k, v in state["state_dict"].items() if k.startswith("net.")}
        net.load_state_dict(weights)
    except pickle.UnpicklingError:  # torch's message suggests weights_only=False: never for a file from elsewhere
        raise UserError(f"{ckpt}: cannot load the checkpoint: it holds objects other than weights, which "
                        "weights-only loading refuses") from None
    except Exception as err:  # noqa: BLE001 - a damaged file is a user-facing condition
        detail = (str(err).strip().splitlines() or [""])[0][:200]
        raise UserError(f"{ckpt}: cannot load the checkpoint ({type(err).__name__}: {detail})") from None
    net.eval()
    epochs = (state.get("ddsweep") or {}).get("epochs_completed", "?")
    return cfg, dataset, labels, net, epochs


# bytes per label-map pixel: int64 argmax labels, and their concatenation's copy
LABEL_BYTES = 16


def check_outputs(args, out: Path) -> None:
    """Before any checkpoint is loaded: --out can be written, no file to write there is a
    directory, and the label maps of each run (resolution² × planes × seeds) fit in memory."""
    from ddsweep.pipeline.store.outputs import check_memory, check_not_directories, check_output_dir, memory_limit
    from ddsweep.pipeline.store.rundir import RunDir

    check_output_dir(out, "--out")
    for path in args.runs:
        run, _ = find_run(path)
        saved = RunDir(run).saved_config() or {}
        seeds = saved.get("seeds") if isinstance(saved.get("seeds"), list) else [0]
        families = (saved.get("planes") or {}).get("families") if isinstance(saved.get("planes"), dict) else None
        family = args.family or (families[0] if isinstance(families, list) and families else None)
        maps = len(args.index) * max(1, len(seeds))
        largest = math.isqrt(memory_limit()[0] // (maps * LABEL_BYTES))
        check_memory(args.resolution ** 2 * maps * LABEL_BYTES,
                     f"--resolution {args.resolution}: the label maps of {run} ({len(args.index)} plane(s) x "
                     f"{max(1, len(seeds))} seed(s))", f"use --resolution {largest} or less, or fewer --index values")
        if isinstance(family, str):
            stems = [out / f"{run.name}_{family}_{i}" for i in args.index]
            check_not_directories([f"{stem}_{end}" for stem in stems for end in ("final.png", "seeds_final.png",
                                                                                "final.npz")], "--out")
    if len(args.runs) > 1 and args.family:
        check_not_directories([out / f"montage_{args.family}_{i}.png" for i in args.index], "--out")


def main(argv: list[str]) -> int:
    parser = OneLineParser(
        prog="ddsweep plane",
        description="Draw decision planes (figure resolution) from saved runs. With several runs, also a "
                    "montage of the same plane across them (e.g. across widths).")
    parser.add_argument("runs", nargs="+", help="run directories or checkpoint files")
    parser.add_argument("--family", default=None, help="triplet family (default: the run's first)")
    parser.add_argument("--index", type=int, nargs="+", default=[0], help="plane indices within the family")
    parser.add_argument("--resolution", type=int, default=500)
    parser.add_argument("--margin", type=float, default=0.5)
    parser.add_argument("--out", default="planes_out", help="output directory (default: planes_out)")
    args = parser.parse_args(argv)
    if args.resolution < 2:
        raise UserError(f"--resolution: must be >= 2, got {args.resolution}")
    if args.margin < 0:
        raise UserError(f"--margin: must be >= 0, got {args.margin}")
    out = Path(args.out)
    check_outputs(args, out)
    out.mkdir(parents=True, exist_ok=True)

    from ddsweep.pipeline.measure.evaluate import as_logits_fn
    from ddsweep.pipeline.train.measurement import draw_indices
    from ddsweep.pipeline.viz.draw import draw_planes
    from ddsweep.pipeline.viz.plots import montage, save_figure

    panels: dict[int, list] = {i: [] for i in args.index}
    for path in args.runs:
        run, ckpt = find_run(path)
        cfg, dataset, labels, net, epochs = load_run(run, ckpt)
        family = args.family or cfg.planes.families[0]
        if family not in cfg.planes.families:
            raise UserError(f"--family: {family!r} is not measured by {run}; it has {', '.join(cfg.planes.families)}")
        idx_all = draw_indices(cfg, dataset, labels, len(cfg.seeds))[f"planes/{family}"]
        bad = [i for i in args.index if not 0 <= i < len(idx_all)]
        if bad:
            raise UserError(f"--index: {bad} out of range; {run} has {len(idx_all)} {family} planes (0..{len(idx_all) - 1})")
        idx = idx_all[args.index]
        x = dataset.x_test if family == "test" else dataset.x_train
        title = (f"{cfg.model.name} k={cfg.model.width}, {cfg.data.noise.kind} noise {cfg.data.noise.rate:g}\n"
                 f"{family} plane {{t}}, epoch {epochs}, {{regions}} regions")
        images = draw_planes(as_logits_fn(net), x[idx], idx, family, dataset, labels, seeds=cfg.seeds,
                             resolution=args.resolution, margin=args.margin, title=title,
                             stem=str(out / f"{run.name}_{family}_{{t}}"), suffix="final",
                             max_points_per_call=cfg.planes.max_points_per_call, plane_ids=args.index)
        for i in args.index:
            maps = np.load(out / f"{run.name}_{family}_{i}_final.npz")["labels"]  # [S, R, R]
            panels[i].append((maps[0], f"k={cfg.model.width} ({run.name})"))
            print(images[f"planes/{family}_{i}"])
        num_classes = dataset.num_classes
    if len(args.runs) > 1:
        for i, items in panels.items():
            fig = montage([m for m, _ in items], [t for _, t in items], ncols=min(4, len(items)),
                          num_classes=num_classes, suptitle=f"{family} plane {i} across runs")
            print(save_figure(fig, out / f"montage_{family}_{i}.png"))
    return 0
