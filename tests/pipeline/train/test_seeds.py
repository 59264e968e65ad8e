"""Several seeds in one run: which randomness differs is exact, and the repro metrics mean it."""
import json

import pytest
import torch

from ddsweep.data import DeviceBatches, load_source
from ddsweep.models import unstack_state_dict
from ddsweep.pipeline.config import load_config
from ddsweep.pipeline.train.network import build_network, seed_streams
from ddsweep.pipeline.train.run import train_run

BASE = ["--data.name=digits", "--model.width=8", "--train.epochs=2", "--train.batch_size=256",
        "--planes.n_planes=3", "--planes.resolution=10", "--planes.agreement_triplets=5", "--planes.draw=0",
        "--regions1d.pairs=4", "--regions1d.points=10", "--wandb.mode=disabled"]


def _net(vary):
    cfg = load_config(overrides=["--model.width=8", f"--repro.vary={vary}"])
    init, _ = seed_streams([0, 1], vary)
    return build_network(cfg.model, in_shape=(1, 8, 8), num_classes=10, init_seeds=init, fuse=True)


def _copies_equal(net):
    sd = net.state_dict()
    a, b = unstack_state_dict(sd, 0), unstack_state_dict(sd, 1)
    return all(torch.equal(a[k], b[k]) for k in a)


def test_vary_order_shares_initial_weights_bitwise():
    assert _copies_equal(_net("order"))
    assert not _copies_equal(_net("init"))
    assert not _copies_equal(_net("both"))


@pytest.mark.parametrize("vary, same_order", [("init", True), ("order", False), ("both", False)])
def test_data_order_follows_vary(vary, same_order):
    ds = load_source("digits")
    _, order = seed_streams([0, 1], vary)
    batches = DeviceBatches(ds.x_train, ds.y_train, batch_size=64, order_seeds=order, window=None, augment=None)
    x, y = next(iter(batches))
    assert torch.equal(x[0], x[1]) == same_order and torch.equal(y[0], y[1]) == same_order


def _rows(tmp_path, name, extra):
    cfg = load_config(overrides=[*BASE, f"--output_dir={tmp_path}", f"--run_name={name}", *extra])
    assert train_run(cfg, verbose=False) == 0
    return [json.loads(l) for l in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]


def test_identically_trained_seeds_agree_exactly(tmp_path):
    # vary=order with a fixed data order (window 1): same weights, same batches → same model.
    last = _rows(tmp_path, "same", ["--repro.vary=order", "--repro.shuffle_window=1"])[-1]
    assert last["repro/plane_agreement"] == 1.0
    assert last["repro/test_disagreement"] == 0.0
    assert last["repro/pd_l1"] == 0.0
    assert last["test/loss/seed0"] == last["test/loss/seed1"]


def test_differently_initialized_seeds_disagree(tmp_path):
    last = _rows(tmp_path, "diff", ["--repro.vary=init"])[-1]
    assert last["repro/plane_agreement"] < 1.0 and last["repro/test_disagreement"] > 0.0


def test_one_seed_has_no_repro_metrics(tmp_path):
    rows = _rows(tmp_path, "one", ["--seeds=[5]"])
    assert rows and not any(k.startswith("repro/") for r in rows for k in r)
    assert "test/error/seed5" in rows[-1] and "regions/train/mean" in rows[-1]


def test_measurement_epochs_and_the_last_epoch_are_evaluated(tmp_path):
    # planes every epoch, evaluation every 2 of 3 epochs: epochs 1 and 3 are evaluated because they
    # are measured (and 3 is the last), so agreement and test error always come from one evaluation.
    rows = _rows(tmp_path, "sparse", ["--train.epochs=3", "--train.eval_every=2"])
    assert all("test/error" in r and "repro/test_disagreement" in r for r in rows)
    rows = _rows(tmp_path, "noplanes", ["--train.epochs=3", "--train.eval_every=2", "--planes.every_n_epochs=0"])
    assert ["test/error" in r for r in rows] == [False, True, True]  # epoch 2 (eval_every) and 3 (last)
    assert "repro/test_disagreement" in rows[-1] and "repro/pd_l1" in rows[-1]  # with planes off too
    assert not any(k.startswith("regions") or k == "repro/plane_agreement" for r in rows for k in r)
    summary = json.loads((tmp_path / "noplanes" / "summary.json").read_text())
    assert summary["metric_epochs"]["test/error"] == 3 and summary["metrics"]["test/error"] == rows[-1]["test/error"]
