"""`ddsweep train` through the real entry point with the GPU's choices forced on a CPU: channels-last
convolutions, bf16 autocast (and, slow, torch.compile), for every registered family with fused seeds,
on CIFAR-10 files in the real on-disk format (bench.gpu_check.write_cifar_files). cnn1dk takes
sequences, so it runs on MNIST-1D (generated, no files) with channels_last left to auto."""
import json

import pytest

from bench.gpu_check import write_cifar_files
from ddsweep.models import list_models
from ddsweep.pipeline.cli import main

# Per family: extra overrides that keep it tiny (1 epoch, width 1-2, 48 images).
FAMILIES = {
    "resnet18k": [],
    "resnet18k_basic": [],
    "cnn5k": [],
    "vggk": [],
    "vitk": ["--model.depth=1"],
    "mlpk": [],  # flattens the CIFAR image
    "cnn1dk": ["--data.name=mnist1d", "--data.num_samples=120"],
}
GPU_OPTIONS = ["--train.channels_last=true", "--train.precision=bf16-mixed"]
TINY = ["--train.epochs=1", "--train.batch_size=16", "--seeds=[0,1]", "--train.fuse_seeds=true",
        "--planes.n_planes=2", "--planes.resolution=6", "--planes.agreement_triplets=2", "--planes.draw=1",
        "--planes.draw_resolution=8", "--regions1d.pairs=2", "--regions1d.points=8", "--wandb.mode=disabled",
        "--quiet"]


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar_files(root, "cifar10", n_train=40, n_test=16, seed=0)
    return root


def train(family: str, root, out, *extra: str) -> dict:
    data = ["--data.name=cifar10", f"--data.root={root}"]
    args = ["train", f"--model.name={family}", "--model.width=2", *data, *FAMILIES[family], *TINY,
            f"--output_dir={out}", "--run_name=run", *extra]
    assert main(args) == 0
    return json.loads((out / "run" / "summary.json").read_text())


def test_every_family_is_covered():
    assert sorted(FAMILIES) == list_models(), "a new family needs its entry in FAMILIES"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_gpu_options_forced_on_cpu(family, cifar_root, tmp_path):
    forced = GPU_OPTIONS if family != "cnn1dk" else GPU_OPTIONS[1:]
    summary = train(family, cifar_root, tmp_path, *forced)
    assert summary["status"] == "finished" and summary["error"] is None
    assert summary["device"]["precision"] == "bf16-mixed"
    assert summary["device"]["channels_last"] is (family != "cnn1dk")
    assert summary["device"]["accelerator"] == "cpu" and summary["device"]["deterministic"] is True
    for key in ("train/loss", "test/error", "regions/train/mean", "regions1d/mean", "repro/plane_agreement"):
        assert key in summary["metrics"], key


def test_channels_last_needs_images(tmp_path, capsys):
    code = main(["train", "--model.name=cnn1dk", "--data.name=mnist1d", "--data.num_samples=120",
                 "--train.channels_last=true", *TINY, f"--output_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2 and err == ("ddsweep: error: train.channels_last: true needs image inputs [C, H, W]; "
                                 "these inputs are [40]; set it to auto or false\n")


def test_non_deterministic_gpu_setting_runs_on_cpu(cifar_root, tmp_path):
    summary = train("cnn5k", cifar_root, tmp_path, "--train.deterministic=false")
    assert summary["status"] == "finished" and summary["device"]["deterministic"] is False


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_compiled(family, cifar_root, tmp_path):
    forced = GPU_OPTIONS if family != "cnn1dk" else GPU_OPTIONS[1:]
    summary = train(family, cifar_root, tmp_path, *forced, "--train.compile=true")
    assert summary["status"] == "finished" and summary["device"]["compile"] == "default"
