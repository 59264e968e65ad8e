"""`ddsweep plane` from saved runs, the 2-D input plane, and data-dependent family checks."""
import pytest

from ddsweep.pipeline.cli import main
from ddsweep.pipeline.config import load_config
from ddsweep.errors import ConfigError
from ddsweep.pipeline.train.run import prepare_data, train_run

COMMON = ["--train.epochs=2", "--train.batch_size=256", "--planes.n_planes=4", "--planes.resolution=10",
          "--planes.agreement_triplets=3", "--planes.draw=1", "--planes.draw_resolution=20",
          "--regions1d.pairs=3", "--regions1d.points=10", "--wandb.mode=disabled"]


def _train(tmp_path, name, extra):
    cfg = load_config(overrides=[*COMMON, f"--output_dir={tmp_path}", f"--run_name={name}", *extra])
    assert train_run(cfg, verbose=False) == 0
    return tmp_path / name


def test_plane_command_draws_planes_and_a_montage(tmp_path, capsys):
    runs = [_train(tmp_path, f"k{k}", ["--data.name=digits", f"--model.width={k}"]) for k in (4, 16)]
    out = tmp_path / "figs"
    code = main(["plane", *map(str, runs), "--family", "train", "--index", "0", "2",
                 "--resolution", "30", "--out", str(out)])
    assert code == 0
    for run in runs:
        for i in (0, 2):
            assert (out / f"{run.name}_train_{i}_final.png").stat().st_size > 10_000
            assert (out / f"{run.name}_train_{i}_seeds_final.png").exists()
    assert (out / "montage_train_0.png").stat().st_size > 5_000
    assert str(out / "montage_train_2.png") in capsys.readouterr().out


def test_plane_command_rejects_bad_index_and_family(tmp_path, capsys):
    run = _train(tmp_path, "r", ["--data.name=digits", "--model.width=4"])
    assert main(["plane", str(run), "--index", "99"]) == 2
    assert "--index" in capsys.readouterr().err
    assert main(["plane", str(run), "--family", "mislabeled"]) == 2
    assert "--family" in capsys.readouterr().err
    assert main(["plane", str(tmp_path / "nope")]) == 2


def test_two_dimensional_data_draws_the_input_plane(tmp_path):
    run = _train(tmp_path, "moons", ["--data.name=moons", "--planes.agreement_family=test"])
    assert (run / "planes" / "input_e0002.png").stat().st_size > 10_000


def test_agreement_family_impossible_on_two_classes_is_rejected_up_front():
    cfg = load_config(overrides=["--data.name=moons"])
    with pytest.raises(ConfigError, match="planes.agreement_family"):
        prepare_data(cfg)
