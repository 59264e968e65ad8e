"""DevicePlan's decisions (every device-conditional choice), the channels-last layout of fused 2-D
convolutions, and the sweep engine's GPU assignment: known answers, no device needed."""
from types import SimpleNamespace

import pytest
import torch

from ddsweep.errors import ConfigError
from ddsweep.models import create_model
from ddsweep.models.layers import PConv2d, channels_last_
from ddsweep.pipeline.config import load_config
from ddsweep.pipeline.train import device as D


def train_cfg(**kw):
    base = dict(accelerator="cpu", precision="auto", channels_last="auto", compile=False, compile_mode="default",
                deterministic="auto")
    return SimpleNamespace(**{**base, **kw})


def test_cpu_defaults_and_forced_gpu_choices():
    plan = D.DevicePlan.for_config(train_cfg(), in_shape=(3, 32, 32))
    assert (plan.precision, plan.channels_last, plan.deterministic) == ("32-true", False, True)
    forced = D.DevicePlan.for_config(train_cfg(precision="bf16-mixed", channels_last=True, deterministic=False),
                                     in_shape=(3, 32, 32))
    assert (forced.precision, forced.channels_last, forced.deterministic) == ("bf16-mixed", True, False)
    assert forced.describe() == {"accelerator": "cpu", "precision": "bf16-mixed", "channels_last": True,
                                 "compile": False, "deterministic": False}


def test_gpu_auto_decisions():
    assert D.resolve_precision("auto", "gpu") == "bf16-mixed" and D.resolve_precision("32", "gpu") == "32-true"
    assert D.resolve_channels_last("auto", "gpu", (3, 32, 32)) is True
    assert D.resolve_channels_last("auto", "gpu", (40,)) is False
    assert D.resolve_channels_last("auto", "cpu", (3, 32, 32)) is False
    assert D.resolve_deterministic("auto", "gpu") is False and D.resolve_deterministic(True, "gpu") is True


def test_fp16_needs_a_gpu():
    with pytest.raises(ConfigError, match=r"^train\.precision: 16-mixed \(fp16 autocast\) needs a GPU; on cpu "):
        D.resolve_precision("16-mixed", "cpu")
    assert D.resolve_precision("16-mixed", "gpu") == "16-mixed"


@pytest.mark.parametrize("key", ["channels_last", "deterministic"])
def test_config_keys(key):
    assert getattr(load_config(None, [f"--train.{key}=true"]).train, key) is True
    assert getattr(load_config(None, []).train, key) == "auto"
    with pytest.raises(ConfigError, match=rf"^train\.{key}: 'yes please' is not allowed; choose one of auto, true, "
                                          rf"false \(from --train\.{key}=yes please\)$"):
        load_config(None, [f"--train.{key}=yes please"])
    with pytest.raises(ConfigError, match=rf"^train\.{key}: 1 is not allowed"):
        load_config(None, [f"--train.{key}=1"])


def test_measure_precision_key():
    assert load_config(None, []).planes.precision == "32"
    assert D.measure_amp_dtype("32") is None and D.measure_amp_dtype("bf16") is torch.bfloat16
    with pytest.raises(ConfigError, match=r"^planes\.precision: 'fp16' is not allowed; choose one of 32, bf16 \(from --planes\.precision=fp16\)$"):
        load_config(None, ["--planes.precision=fp16"])


@pytest.mark.parametrize("name", ["resnet18k", "cnn5k", "vggk", "vitk"])
def test_channels_last_layout(name):
    """The fused conv weights' per-call view is channels-last (a view, not a copy), every conv's
    output is channels-last, the function is the same, and the state dict loads either way."""
    opts = {"depth": 1} if name == "vitk" else {}
    net, plain = (create_model(name, width=2, in_shape=(3, 16, 16), num_classes=10, copies=2, **opts) for _ in "ab")
    x = torch.randn(2, 5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    expected = net(x)
    convs = [m for m in net.modules() if isinstance(m, PConv2d)]
    assert channels_last_(net) == len(convs) > 0
    for conv in convs:
        view = conv.weight.reshape(-1, *conv.weight.shape[2:])  # [S*Cout, Cin, k, k]
        assert view.is_contiguous(memory_format=torch.channels_last) and view.data_ptr() == conv.weight.data_ptr()
    layouts = []
    hooks = [c.register_forward_hook(lambda m, i, o: layouts.append(o.is_contiguous(memory_format=torch.channels_last)))
             for c in convs]
    torch.testing.assert_close(net(x), expected, rtol=1e-4, atol=1e-5)
    for h in hooks:
        h.remove()
    assert layouts and all(layouts)
    plain.load_state_dict(net.state_dict())
    torch.testing.assert_close(plain(x), expected, rtol=1e-4, atol=1e-5)
    net.load_state_dict(plain.state_dict())  # copies into the channels-last parameters, keeping their layout
    assert convs[0].weight.reshape(-1, *convs[0].weight.shape[2:]).is_contiguous(memory_format=torch.channels_last)


def test_channels_last_gradients_keep_the_layout():
    net = create_model("cnn5k", width=2, in_shape=(3, 8, 8), num_classes=3, copies=2)
    channels_last_(net)
    net(torch.randn(2, 4, 3, 8, 8)).sum().backward()
    conv = next(m for m in net.modules() if isinstance(m, PConv2d))
    assert conv.weight.grad.stride() == conv.weight.stride()


def test_visible_gpus():
    assert D.visible_gpus(None, 0) == [] and D.visible_gpus("0,1", 0) == []
    assert D.visible_gpus(None, 3) == ["0", "1", "2"]
    assert D.visible_gpus("3, 5", 8) == ["3", "5"] and D.visible_gpus("3,5,7", 2) == ["3", "5"]
    assert D.visible_gpus("", 4) == [] and D.visible_gpus("-1", 4) == []
    assert [D.gpu_for_slot(["3", "5"], s) for s in range(4)] == ["3", "5", "3", "5"]


def test_detect_gpus_without_torch_when_hidden(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: pytest.fail("asked torch"))
    assert D.detect_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,4")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert D.detect_gpus() == ["2", "4"]
