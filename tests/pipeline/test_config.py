"""Config: defaults, YAML, overrides, and a one-line error naming the key for every bad input."""
import pytest

from pipeline.config import Config, known_keys, load_config, parse_override
from ddsweep.errors import ConfigError


def test_defaults_validate():
    cfg = load_config()
    assert cfg.model.name == "mlpk" and cfg.seeds == [0, 1]


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {name: cnn5k, width: 4}\ndata: {noise: {rate: 0.1}}\n")
    cfg = load_config(path, ["--model.width=8", "--data.noise.kind=uniform", "--seeds=[3,4,5]",
                             "--train.lr=1e-4", "--wandb=disabled"])
    assert (cfg.model.name, cfg.model.width) == ("cnn5k", 8)
    assert cfg.data.noise.rate == 0.1 and cfg.data.noise.kind == "uniform"
    assert cfg.seeds == [3, 4, 5] and cfg.train.lr == 1e-4 and cfg.wandb.mode == "disabled"


def test_family_and_source_options_sit_flat():
    cfg = load_config(overrides=["--model.depth=3", "--data.name=gaussians", "--data.dim=5"])
    assert cfg.model.options == {"depth": 3}
    assert cfg.to_dict()["model"]["depth"] == 3 and cfg.to_dict()["data"]["dim"] == 5


def test_round_trip_through_to_dict():
    cfg = load_config(overrides=["--model.depth=3", "--data.noise.rate=0.2"])
    again = load_config(overrides={k: v for k, v in _flatten(cfg.to_dict()).items()})
    assert again == cfg


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("options",):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


@pytest.mark.parametrize("override, key", [
    ("--model.name=resnet", "model.name"),
    ("--model.width=0", "model.width"),
    ("--model.width=2.5", "model.width"),
    ("--model.activation=tanh", "model.activation"),
    ("--model.bogus=1", "model.bogus"),
    ("--data.name=cifar", "data.name"),
    ("--data.noise.rate=1.0", "data.noise.rate"),
    ("--data.noise.rate=-0.1", "data.noise.rate"),
    ("--data.noise.kind=flip", "data.noise.kind"),
    ("--data.bogus=3", "data.bogus"),
    ("--train.epochs=0", "train.epochs"),
    ("--train.optimizer=rmsprop", "train.optimizer"),
    ("--train.lr=-1", "train.lr"),
    ("--train.bogus=1", "train.bogus"),
    ("--bogus=1", "bogus"),
    ("--seeds=[]", "seeds"),
    ("--seeds=[1,1]", "seeds"),
    ("--repro.vary=weights", "repro.vary"),
    ("--planes.families=[train,spiral]", "planes.families"),
    ("--planes.families=[mislabeled]", "planes.families"),
    ("--wandb.mode=sometimes", "wandb.mode"),
    ("--data.augment.crop=maybe", "data.augment.crop"),
    ("model.width=3", "model.width"),
    ("--train.devices=2", "train.devices"),
    ("--train.strategy=ddp", "train.strategy"),
])
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[override])
    message = str(err.value)
    assert key in message and "\n" not in message


def test_malformed_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: {name: mlpk\n  width: [\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_override_parsing_types():
    assert parse_override("--a.b=0.5") == ("a.b", 0.5)
    assert parse_override("--a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("--a.b=true") == ("a.b", True)
    assert parse_override("--a.b=null") == ("a.b", None)


def test_known_keys_cover_the_contract():
    keys = known_keys(Config())
    for key in ("model.name", "model.width", "data.name", "data.noise.rate", "data.noise.kind",
                "train.epochs", "train.batch_size", "train.lr", "seeds", "output_dir"):
        assert key in keys


def test_several_devices_point_to_the_sweep_engine():
    """One run is one device (its data lives there); several GPUs mean several runs at once."""
    with pytest.raises(ConfigError, match="train.devices: 4 is not supported.*ddsweep sweep FILE --local"):
        load_config(overrides=["--train.devices=4"])
