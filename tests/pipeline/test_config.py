"""Config: defaults, YAML, overrides, and a one-line error naming the key for every bad input."""
import re

import pytest

from ddsweep.pipeline.config import Config, known_keys, load_config, parse_override
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


# ----------------------------------------------------------------------------- strict types

@pytest.mark.parametrize("override, message", [
    ("--train.epochs=3.5", "train.epochs: must be an integer, got 3.5"),
    ("--train.epochs=true", "train.epochs: must be an integer, got True"),
    ("--train.epochs=abc", "train.epochs: must be an integer, got 'abc'"),
    ("--train.epochs='3'", "train.epochs: must be an integer, got '3'"),
    ("--data.augment.crop=yes", "data.augment.crop: must be true or false, got 'yes'"),
    ("--data.augment.crop=on", "data.augment.crop: must be true or false, got 'on'"),
    ("--data.augment.crop=1", "data.augment.crop: must be true or false, got 1"),
    ("--train.lr=abc", "train.lr: must be a finite number, got 'abc'"),
    ("--train.lr=.nan", "train.lr: must be a finite number, got nan"),
    ("--train.lr=true", "train.lr: must be a finite number, got True"),
    ("--wandb.mode=off", "wandb.mode: 'off' is not allowed; choose one of online, offline, disabled"),
])
def test_strict_types_refuse_what_is_not_of_the_type(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[override])
    assert str(err.value) == f"{message} (from {override})"


def test_numbers_convert_as_before():
    cfg = load_config(overrides=["--train.lr=1e-4", "--train.momentum=0", "--train.epochs=4.0",
                                 "--train.precision=32", "--data.augment.flip=True", "--seeds=7"])
    assert cfg.train.lr == 1e-4 and isinstance(cfg.train.momentum, float) and cfg.train.momentum == 0.0
    assert cfg.train.epochs == 4 and isinstance(cfg.train.epochs, int)
    assert cfg.train.precision == "32" and cfg.data.augment.flip is True and cfg.seeds == [7]


def test_a_number_beyond_any_float_is_one_line():
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["--train.lr=1" + "0" * 400])
    assert str(err.value).startswith("train.lr: must be a finite number, got 1000") and len(str(err.value)) < 300


# ----------------------------------------------------------------------------- who is blamed

def test_an_override_is_blamed_over_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {lr: 0.1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["--train.lr=x"])
    assert str(err.value) == "train.lr: must be a finite number, got 'x' (from --train.lr=x)"


def test_the_file_is_blamed_for_its_own_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {lr: abc}\nmodel: {width: 0}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["--model.width=4"])
    assert str(err.value) == f"train.lr: must be a finite number, got 'abc' (in {path})"


def test_the_last_override_of_a_key_is_blamed():
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["--train.epochs=0", "--train.epochs=-2"])
    assert str(err.value) == "train.epochs: must be >= 1, got -2 (from --train.epochs=-2)"


@pytest.mark.parametrize("override, message", [
    ("--data.noise=0.2", "data.noise: must be a mapping (keys kind, rate, seed), got 0.2"),
    ("--model.width.x=1", "model.width: must be an integer, got {'x': 1}"),
])
def test_a_section_set_above_or_below_the_key_is_blamed(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[override])
    assert str(err.value) == f"{message} (from {override})"


def test_a_default_broken_by_another_key_blames_nothing_it_did_not_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {epochs: 2}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["--planes.families=[train, mislabeled]"])
    assert str(err.value).endswith("needs label noise (data.noise.rate > 0) "
                                   "(from --planes.families=[train, mislabeled])")


def test_an_override_with_a_newline_stays_one_line():
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["--run_name=a/\nb"])
    assert "\n" not in str(err.value) and str(err.value).startswith("run_name: ")


# ----------------------------------------------------------------------------- unknown keys

@pytest.mark.parametrize("override, allowed", [
    ("--bogus=1", "data, margin, model, output_dir, planes, regions1d, repro, run_name, seeds, train, wandb"),
    ("--data.noise.bogus=1", "kind, rate, seed"),
    ("--train.bogus=1", "accelerator, batch_size, channels_last, checkpoint_every, checkpoint_minutes, compile, "
                        "compile_mode, deterministic, devices, epochs, eval_batch_size, eval_every, fuse_seeds, lr, "
                        "momentum, optimizer, precision, schedule, schedule_interval, schedule_step, strategy, "
                        "weight_decay"),
])
def test_an_unknown_key_lists_every_key_of_its_section(override, allowed):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[override])
    key = override[2:].split("=")[0]
    assert str(err.value) == f"{key}: unknown key; allowed keys are {allowed} (from {override})"


@pytest.mark.parametrize("override", ["--model.bogus=1", "--model.options={depth: 3}"])
def test_an_unknown_model_key_lists_the_section_and_the_family_options(override):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["--model.name=vitk", override])
    key = override[2:].split("=")[0]
    assert str(err.value) == (f"{key}: unknown key for model.name=vitk; allowed keys are activation, depth, "
                              f"head_dim, mlp_ratio, name, patch_size, smelu_beta, width (from {override})")


def test_internal_keys_are_never_offered():
    assert not {k for k in known_keys(Config()) if k.split(".")[-1] in ("options", "in_shape", "copies")}
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["--data.name=gaussians", "--data.bogus=1"])
    assert "allowed keys are augment, classes, dim, download, n_train, name, noise, root, seed, separation, " \
           "subset_seed, test_size, train_size (from" in str(err.value)


# ----------------------------------------------------------------------------- seeds, names, files

@pytest.mark.parametrize("override, key", [
    ("--seeds=[0, 9223372036854775808]", "seeds: every seed must be an integer in [0, 2**63)"),
    ("--seeds=[-1]", "seeds: every seed must be an integer in [0, 2**63)"),
    ("--data.noise.seed=9223372036854775808", "data.noise.seed: must be an integer in [0, 2**63)"),
    ("--data.subset_seed=18446744073709551616", "data.subset_seed: must be an integer in [0, 2**63)"),
    ("--planes.seed=" + "9" * 40, "planes.seed: must be an integer in [0, 2**63)"),
    ("--train.epochs=" + "9" * 40, "train.epochs: must be an integer between -2**63 and 2**63 - 1"),
])
def test_huge_integers_are_refused(override, key):
    with pytest.raises(ConfigError, match=re.escape(key)) as err:
        load_config(overrides=[override])
    assert "\n" not in str(err.value)


def test_the_largest_seed_seeds_every_generator_of_a_run():
    """2**63 - 1 is accepted, and it and its data-order stream (seed + an offset) seed torch."""
    import torch
    from ddsweep.pipeline.train.network import seed_streams

    cfg = load_config(overrides=[f"--seeds=[0, {2**63 - 1}]", f"--data.noise.seed={2**63 - 1}"])
    init, order = seed_streams(cfg.seeds, "both")
    for seed in [*init, *order, cfg.data.noise.seed]:
        torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name, message", [
    ("a" * 201, "run_name: must be at most 200 characters, got 201"),
    ("a/b", "run_name: 'a/b' must be a plain directory name (no '/', '\\' or NUL)"),
    ("a\\b", "run_name: 'a\\\\b' must be a plain directory name (no '/', '\\' or NUL)"),
    ("a\0b", "run_name: 'a\\x00b' must be a plain directory name (no '/', '\\' or NUL)"),
    ("..", "run_name: '..' must be a plain directory name (no '/', '\\' or NUL)"),
])
def test_run_name_is_one_plain_directory_name(name, message):
    with pytest.raises(ConfigError) as err:
        load_config(overrides={"run_name": name})
    assert str(err.value).startswith(message + " (from --run_name=")
    assert load_config(overrides={"run_name": "a" * 200}).run_name == "a" * 200


def test_config_path_that_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match=f"--config: {re.escape(str(tmp_path))} is a directory"):
        load_config(tmp_path)


def test_assignment_is_checked_like_input():
    cfg = load_config()
    cfg.train.epochs = 3
    assert cfg.train.epochs == 3 and cfg.to_dict()["train"]["epochs"] == 3
    with pytest.raises(ValueError, match="must be >= 1, got 0"):
        cfg.train.epochs = 0
