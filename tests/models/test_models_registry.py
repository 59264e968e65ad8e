"""Every registered family x a few widths: shapes, gradients, sizes, options and errors."""

import pytest
import torch

from ddsweep.models import (ACTIVATIONS, count_params, create_model, list_models, model_options,
                    register_model)
from ddsweep.errors import ConfigError


def randn(*shape: int) -> torch.Tensor:
    """Test inputs from a fixed seed (never the global RNG)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


SHAPES = {"cnn1dk": (40,), "mlpk": (2,)}  # everything else takes images


def in_shape(name: str) -> tuple[int, ...]:
    return SHAPES.get(name, (3, 8, 8))


def test_registry_lists_the_families():
    assert list_models() == ["cnn1dk", "cnn5k", "mlpk", "resnet18k", "resnet18k_basic", "vggk", "vitk"]
    assert ACTIVATIONS == ("relu", "gelu", "silu", "softplus", "smelu")
    assert model_options("mlpk") == {"depth": 2, "smelu_beta": 1.0}
    assert model_options("vggk") == {"depth": 11, "smelu_beta": 1.0}
    assert model_options("vitk") == {"depth": 4, "patch_size": 4, "head_dim": 8, "mlp_ratio": 2.0,
                                     "smelu_beta": 1.0}


@pytest.mark.parametrize("copies", [1, 2])
@pytest.mark.parametrize("name", list_models())
def test_forward_backward_every_width(name, copies):
    sizes = []
    for width in (1, 2, 4):
        model = create_model(name, width=width, in_shape=in_shape(name), num_classes=3, copies=copies)
        assert (model.width, model.in_shape, model.num_classes, model.copies) == (
            width, in_shape(name), 3, copies)
        x = randn(copies, 4, *in_shape(name))
        out = model(x)
        assert out.shape == (copies, 4, 3)
        out.square().sum().backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        sizes.append(count_params(model))
    assert sizes == sorted(set(sizes)), f"{name}: parameter counts {sizes} do not grow with width"


@pytest.mark.parametrize("name", list_models())
def test_single_input_copy_is_broadcast(name):
    model = create_model(name, width=2, in_shape=in_shape(name), num_classes=3, copies=3).eval()
    x = randn(1, 4, *in_shape(name))
    torch.testing.assert_close(model(x), model(x.expand(3, *x.shape[1:])))
    with pytest.raises(ValueError, match="expected input"):
        model(randn(2, 4, *in_shape(name)))


def test_resnet18k_64_is_the_standard_preact_resnet18():
    model = create_model("resnet18k", width=64, in_shape=(3, 32, 32), num_classes=10)
    assert count_params(model) == 11_171_146


def test_resnet18k_basic_64_is_the_standard_resnet18():
    # kuangliu/pytorch-cifar's ResNet18 (BasicBlock, CIFAR stem): 11,173,962 parameters
    model = create_model("resnet18k_basic", width=64, in_shape=(3, 32, 32), num_classes=10)
    assert count_params(model) == 11_173_962


class _RefBasicBlock(torch.nn.Module):
    """He et al.'s BasicBlock written with plain torch layers (the reference the family must equal)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class _RefResNet18(torch.nn.Module):
    def __init__(self, k, classes):
        super().__init__()
        nn = torch.nn
        self.stem = nn.Conv2d(3, k, 3, 1, 1, bias=False)
        self.stem_norm = nn.Sequential(nn.BatchNorm2d(k), nn.ReLU())
        blocks, cin = [], k
        for cout, stride in zip([k, 2 * k, 4 * k, 8 * k], [1, 2, 2, 2]):
            blocks += [_RefBasicBlock(cin, cout, stride), _RefBasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.blocks(self.stem_norm(self.stem(x)))
        return self.head(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


@pytest.mark.parametrize("train", [True, False])
def test_resnet18k_basic_equals_a_plain_torch_resnet18(train):
    model = create_model("resnet18k_basic", width=4, in_shape=(3, 16, 16), num_classes=5).double()
    ref = _RefResNet18(4, 5).double()
    # one copy: drop the leading copy dimension of every tensor (scalars stay)
    ref.load_state_dict({k: v[0] if v.dim() else v for k, v in model.state_dict().items()})
    with torch.no_grad():  # non-trivial BN affine parameters and statistics, so their order matters
        for (_, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
            noise = randn(*q.shape).double() * 0.1
            p.add_(noise.unsqueeze(0))
            q.add_(noise)
    model.train(train), ref.train(train)
    x = randn(6, 3, 16, 16).double()
    torch.testing.assert_close(model(x[None])[0], ref(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,shape", [("resnet18k", (1, 8, 8)), ("cnn5k", (1, 8, 8)),
                                        ("vggk", (1, 8, 8)), ("vitk", (1, 8, 8)),
                                        ("resnet18k", (3, 1, 1)), ("cnn5k", (3, 1, 1)),
                                        ("vggk", (1, 2, 5)), ("vitk", (1, 3, 2)),
                                        ("cnn1dk", (2, 40)), ("cnn1dk", (1,)), ("mlpk", (1, 4, 4))])
def test_odd_input_shapes(name, shape):
    model = create_model(name, width=1, in_shape=shape, num_classes=2, depth=19) if name == "vggk" \
        else create_model(name, width=1, in_shape=shape, num_classes=2)
    assert model(randn(1, 2, *shape)).shape == (1, 2, 2)


def test_cnn1dk_matches_the_mnist1d_reference_size():
    # Greydanus's ConvBase(channels=25): 3 convs of 25 channels, lengths 40 -> 19 -> 10 -> 5, 125 -> 10.
    expected = (25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (125 * 10 + 10)
    assert count_params(create_model("cnn1dk", width=25, in_shape=(40,), num_classes=10)) == expected


def test_mlpk_matches_40_h_h_10():
    h = 7
    expected = (40 * h + h) + (h * h + h) + (h * 10 + 10)
    assert count_params(create_model("mlpk", width=h, in_shape=(40,), num_classes=10)) == expected


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_builds(activation):
    model = create_model("mlpk", width=3, in_shape=(2,), num_classes=2, activation=activation,
                         smelu_beta=0.5)
    assert torch.isfinite(model(randn(1, 5, 2))).all()


def test_options_reach_the_family():
    shallow = create_model("vggk", width=2, in_shape=(3, 8, 8), num_classes=2)
    deep = create_model("vggk", width=2, in_shape=(3, 8, 8), num_classes=2, depth=16)
    assert count_params(deep) > count_params(shallow)
    vit = create_model("vitk", width=2, in_shape=(3, 8, 8), num_classes=2, depth=1, head_dim=4,
                       mlp_ratio=3, patch_size=2)
    assert vit.blocks[0].attn.heads == 2 and vit.pos_embed.shape == (1, 1, 16, 8)


@pytest.mark.parametrize("kwargs,key", [
    (dict(name="resnet"), "model.name: 'resnet' is not a model; choose one of cnn1dk, cnn5k"),
    (dict(width=0), "model.width: must be an integer >= 1, got 0"),
    (dict(width=2.5), "model.width"),
    (dict(copies=0), "model.copies"),
    (dict(num_classes=0), "model.num_classes"),
    (dict(activation="tanh"), "model.activation: 'tanh' is not allowed; choose one of relu, gelu"),
    (dict(smelu_beta=0.0, activation="smelu"), "model.smelu_beta"),
    (dict(dropout=0.1), "model.dropout: not an option of vggk"),
    (dict(depth=12), "model.depth: 12 is not allowed; choose one of 11, 13, 16, 19"),
    (dict(depth="11"), "model.depth: must be of type int"),
    (dict(depth=True), "model.depth"),
    (dict(in_shape=(40,)), "model.name: vggk takes images"),
    (dict(in_shape=(3, 0, 8)), "model.in_shape"),
])
def test_bad_arguments_raise_config_errors(kwargs, key):
    args = dict(name="vggk", width=2, in_shape=(3, 8, 8), num_classes=2) | kwargs
    with pytest.raises(ConfigError) as info:
        create_model(args.pop("name"), **args)
    assert key in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name,options,key", [
    ("mlpk", dict(depth=0), "model.depth"), ("vitk", dict(head_dim=0), "model.head_dim"),
    ("vitk", dict(mlp_ratio=0), "model.mlp_ratio"), ("vitk", dict(patch_size=0), "model.patch_size"),
    ("cnn1dk", dict(in_shape=(1, 2, 40)), "model.name: cnn1dk takes sequences"), ("resnet18k", dict(depth=2), "model.depth"),
])
def test_bad_family_options(name, options, key):
    args = dict(width=2, in_shape=in_shape(name), num_classes=2) | options
    with pytest.raises(ConfigError, match=key):
        create_model(name, **args)


def test_model_options_of_unknown_name():
    with pytest.raises(ConfigError, match="model.name"):
        model_options("nope")


def test_register_model_checks_the_signature():
    with pytest.raises(TypeError):
        register_model(lambda width, in_shape: None)


@pytest.mark.parametrize("name", list_models())
def test_creation_is_deterministic_and_leaves_the_global_rng_alone(name):
    state = torch.get_rng_state()
    a, b = (create_model(name, width=2, in_shape=in_shape(name), num_classes=3, copies=2,
                         generators=[torch.Generator().manual_seed(s) for s in (5, 6)])
            for _ in range(2))
    assert torch.equal(torch.get_rng_state(), state)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    default = create_model(name, width=2, in_shape=in_shape(name), num_classes=3, copies=2)
    assert not torch.equal(default.head.weight, a.head.weight)  # seeds 0, 1 differ from 5, 6
    assert not torch.equal(default.head.weight[0], default.head.weight[1])  # copies differ
