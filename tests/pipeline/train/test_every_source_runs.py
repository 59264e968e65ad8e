"""Every offline source trains and measures: images, sequences, low-dimensional vectors."""
import json

import pytest

from ddsweep.pipeline.config import load_config
from ddsweep.pipeline.train.run import train_run

TINY = ["--train.epochs=2", "--train.batch_size=128", "--planes.n_planes=2", "--planes.resolution=8",
        "--planes.agreement_triplets=2", "--planes.draw=1", "--planes.draw_resolution=16",
        "--regions1d.pairs=3", "--regions1d.points=8", "--margin.points=40", "--margin.steps=8",
        "--wandb.mode=disabled"]


@pytest.mark.parametrize("extra", [
    ["--data.name=mnist1d", "--data.num_samples=400", "--model.name=cnn1dk", "--model.width=4"],
    ["--data.name=gaussians", "--data.dim=5", "--data.classes=4", "--data.train_size=200",
     "--data.test_size=100", "--model.name=mlpk", "--model.width=8", "--model.activation=smelu"],
    ["--data.name=digits", "--data.n_train=300", "--model.name=cnn5k", "--model.width=2",
     "--data.augment.crop=true", "--data.augment.flip=true", "--repro.vary=both", "--repro.shuffle_window=16"],
    ["--data.name=spirals", "--data.train_size=200", "--data.test_size=100", "--model.name=mlpk",
     "--model.width=8", "--planes.agreement_family=test", "--train.optimizer=sgd", "--train.schedule=cosine"],
])
def test_source_trains_and_measures(tmp_path, extra):
    cfg = load_config(overrides=[*TINY, *extra, "--data.noise.rate=0.2", "--data.noise.kind=uniform",
                                 "--planes.families=[train,test,clean_class,mislabeled]",
                                 f"--output_dir={tmp_path}", "--run_name=r"])
    assert train_run(cfg, verbose=False) == 0
    last = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    for key in ("test/error", "train/memorized", "regions/clean_class/mean", "regions/mislabeled/median",
                "regions1d/mean", "repro/plane_agreement", "margin/clean/mean", "margin/mislabeled/mean"):
        assert key in last, key
    assert last["regions/train/mean"] >= 1
