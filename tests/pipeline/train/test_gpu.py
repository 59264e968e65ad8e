"""On a CUDA device (`pytest -m gpu`, run by `make gpu-check`): every family trains through
`ddsweep train` with the GPU's auto choices (bf16 autocast, channels-last convolutions,
deterministic algorithms off), and a bf16-trained run logs the measurement its checkpoint gives in
fp32 on the same device. Skipped without CUDA; the same paths run forced on a CPU in
test_device_paths.py and test_fp32_measurement.py."""
import json

import pytest
import torch
from test_device_paths import FAMILIES, TINY
from test_fp32_measurement import ARGS, recomputed

from bench.gpu_check import write_cifar_files
from ddsweep.models.layers import channels_last_
from ddsweep.pipeline.cli import main
from ddsweep.pipeline.cli.plane import load_run

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    return write_cifar_files(tmp_path_factory.mktemp("cifar"), "cifar10", n_train=256, n_test=64, seed=0)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_on_the_gpu(family, cifar_root, tmp_path):
    args = ["train", f"--model.name={family}", "--model.width=4", "--data.name=cifar10", f"--data.root={cifar_root}",
            *FAMILIES[family], *TINY, f"--output_dir={tmp_path}", "--run_name=run"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "finished", summary["error"]
    image = family != "cnn1dk"
    assert summary["device"] == {"accelerator": "gpu", "precision": "bf16-mixed", "channels_last": image,
                                 "compile": False, "deterministic": False}


def test_bf16_training_measures_in_fp32_on_the_gpu(cifar_root, tmp_path):
    assert main(["train", *ARGS, f"--data.root={cifar_root}", f"--output_dir={tmp_path}"]) == 0
    run = tmp_path / "run"
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    loaded = load_run(run, run / "checkpoints" / "last.ckpt")
    assert json.loads((run / "summary.json").read_text())["device"]["channels_last"] is True
    channels_last_(loaded[3])  # the run measured channels-last convolutions: the same kernels here
    fp32 = recomputed(loaded, amp_dtype=None, device="cuda")
    assert {k: row[k] for k in fp32} == fp32
