"""The paper presets in sweeps/: valid W&B grid sweeps over known config keys, matching their
published setups (METHODS.md), and every grid point accepted by the config as W&B's agent passes it."""
import itertools
from pathlib import Path

import pytest
import yaml

from ddsweep.pipeline.config import Config, known_keys, load_config

SWEEPS = Path(__file__).resolve().parents[3] / "sweeps"
COMMAND = ["ddsweep", "train", "${args}"]
# Settings each preset must carry (METHODS.md, "Published setups the presets reproduce").
PUBLISHED = {
    "somepalli2022_resnet18k.yaml": {
        # dbViz's script_train.sh: "1 ... 13 16 15 16 17 ... 20 30 40 50 60 64" (no 14)
        "model.name": "resnet18k",
        "model.width": list(range(1, 21)) + [30, 40, 50, 60, 64],
        "data.name": "cifar10", "data.normalize": "pytorch_cifar", "data.noise.kind": "symmetric",
        "data.noise.rate": [0.0, 0.2],
        "train.optimizer": "adam", "train.lr": 1e-4, "train.weight_decay": 0.0, "train.schedule": "constant",
        "train.batch_size": 128, "train.epochs": 4000, "data.augment.crop": True, "data.augment.flip": True,
        "data.augment.pad": 4, "seeds": [0, 1], "repro.vary": "both", "planes.n_planes": 1000,
        "planes.resolution": 50, "planes.margin": 0.1, "planes.agreement_triplets": 1000,
        "margin.method": "dbviz", "margin.directions": 10},
    "nakkiran2019_resnet18k.yaml": {
        "model.name": "resnet18k", "model.width": list(range(1, 65)), "data.noise.kind": "uniform_incorrect",
        "data.noise.rate": [0.1, 0.15, 0.2], "train.optimizer": "adam", "train.lr": 1e-4,
        "train.epochs": 4000, "train.batch_size": 128, "data.augment.crop": True, "data.augment.flip": True},
    "nakkiran2019_cnn5k.yaml": {
        "model.name": "cnn5k", "model.width": list(range(1, 65)), "data.noise.kind": "uniform_incorrect",
        "data.noise.rate": [0.1, 0.15, 0.2], "train.optimizer": "sgd", "train.lr": 0.1,
        "train.schedule": "inv_sqrt", "train.schedule_step": 512, "train.batch_size": 128,
        "train.epochs": 1280, "data.augment.crop": True, "data.augment.flip": True},
    "li2025_regions_lr_bs.yaml": {
        "model.name": "resnet18k_basic", "model.width": 64, "data.name": "cifar10",
        "data.normalize": "pytorch_cifar", "train.schedule_interval": "epoch", "planes.at_init": True,
        "data.augment.crop": False,
        "data.augment.flip": False, "train.optimizer": "sgd", "train.momentum": 0.9, "train.schedule": "cosine",
        "train.epochs": 200, "train.lr": [0.1, 0.01, 0.001], "train.batch_size": [256, 512, 1024],
        "train.weight_decay": [1e-5, 1e-6, 1e-7], "seeds": [0, 1, 2], "regions1d.pairs": 100,
        "regions1d.points": 200, "planes.every_n_epochs": 10},
    "li2025_regions_lr_bs_vgg19.yaml": {"model.name": "vggk", "model.depth": 19, "model.width": 64,
                                        "data.normalize": "pytorch_cifar", "train.schedule_interval": "epoch",
                                        "planes.at_init": True, "train.lr": [0.1, 0.01, 0.001],
                                        "seeds": [0, 1, 2]},
    "irreproducibility.yaml": {
        "data.name": "gaussians", "model.name": "mlpk",
        "model.activation": ["relu", "smelu", "softplus", "gelu", "silu"],
        "repro.vary": ["init", "order", "both"], "seeds": [0, 1]},
    "mnist1d_mlp.yaml": {
        "data.name": "mnist1d", "data.num_samples": 16000, "data.train_split": 0.25,
        "data.noise.kind": "uniform", "data.noise.rate": 0.15, "model.name": "mlpk", "model.depth": 2,
        "train.optimizer": "sgd", "train.lr": 0.01, "train.momentum": 0.9, "train.batch_size": 100,
        "train.epochs": 500, "train.weight_decay": 0.0},
    "mnist1d_cnn.yaml": {
        "data.name": "mnist1d", "data.num_samples": 16000, "data.train_split": 0.25,
        "data.noise.rate": 0.15, "model.name": "cnn1dk", "train.lr": 0.01, "train.batch_size": 100,
        "train.epochs": 500},
}


def _load(name):
    return yaml.safe_load((SWEEPS / name).read_text())


def _setting(spec, key):
    param = spec["parameters"][key]
    return param["values"] if "values" in param else param["value"]


def _points(spec):
    """Every grid point as W&B's agent passes it: `--key=str(value)` (its `${args}` macro)."""
    params = spec["parameters"]
    keys = list(params)
    choices = [p["values"] if "values" in p else [p["value"]] for p in params.values()]
    for combo in itertools.product(*choices):
        yield [f"--{k}={v}" for k, v in zip(keys, combo)]


def test_every_preset_is_present():
    assert set(PUBLISHED) <= {p.name for p in SWEEPS.glob("*.yaml")}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preset_is_a_valid_wandb_grid_sweep(name):
    from ddsweep.vendor.sweeps.config import schema_violations_from_proposed_config

    spec = _load(name)
    assert (SWEEPS / name).read_text().startswith("# Source: "), "name the source paper first"
    assert spec["method"] == "grid" and spec["command"] == COMMAND and spec["program"] == "ddsweep"
    assert schema_violations_from_proposed_config(spec) == []
    for key, param in spec["parameters"].items():
        assert len({"value", "values"} & set(param)) == 1, key
        values = param["values"] if "values" in param else [param["value"]]
        assert values and None not in values, f"{key}: W&B would pass null as the text 'None'"


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preset_uses_known_keys_and_matches_its_paper(name):
    from ddsweep.models import model_options

    spec = _load(name)
    model = _setting(spec, "model.name")
    allowed = known_keys(Config()) | {f"model.{k}" for k in model_options(model)}
    try:
        from ddsweep.data.sources import source_options
        allowed |= {f"data.{k}" for k in source_options(_setting(spec, "data.name"))}
    except ImportError:  # the data registry is not there yet: only its own keys are unchecked
        allowed |= {k for k in spec["parameters"] if k.startswith("data.")}
    assert set(spec["parameters"]) <= allowed
    for key, expected in PUBLISHED[name].items():
        assert _setting(spec, key) == pytest.approx(expected) if isinstance(expected, float) \
            else _setting(spec, key) == expected, key


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_every_grid_point_is_accepted_by_the_config(name):
    try:
        from ddsweep.data import list_sources  # noqa: F401  (config validation needs the data registry)
    except ImportError:
        pytest.skip("the data registry (data.list_sources) is not available yet")
    points = list(_points(_load(name)))
    for args in points:
        cfg = load_config(overrides=args)
        assert cfg.model.name == _setting(_load(name), "model.name")
    assert len(points) > 1
