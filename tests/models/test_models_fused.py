"""A copies=S model is S independent copies=1 models: same init from the same generators, same
outputs, gradients and batch-norm statistics, and state dicts that stack and unstack exactly."""

import pytest
import torch
import torch.nn.functional as F

from ddsweep.models import (count_params, create_model, init_parameters, list_models, stack_state_dicts,
                    unstack_state_dict)


def randn(*shape: int) -> torch.Tensor:
    """Test inputs from a fixed seed (never the global RNG)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


SHAPES = {"cnn1dk": (40,), "mlpk": (2,)}
SEEDS = (10, 11)


def build(name: str, seeds: tuple[int, ...]):
    return create_model(name, width=2, in_shape=SHAPES.get(name, (3, 8, 8)), num_classes=3,
                        activation="smelu" if name == "vggk" else "relu", copies=len(seeds),
                        generators=[torch.Generator().manual_seed(s) for s in seeds])


def assert_state_equal(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(params=list_models())
def models(request):
    name = request.param
    return name, build(name, SEEDS), [build(name, (s,)) for s in SEEDS]


def test_initial_parameters_are_bitwise_equal(models):
    _, fused, singles = models
    assert count_params(fused) == count_params(singles[0])
    for s, single in enumerate(singles):
        assert_state_equal(unstack_state_dict(fused.state_dict(), s), single.state_dict())
    assert_state_equal(stack_state_dicts([m.state_dict() for m in singles]), fused.state_dict())


def test_train_step_matches(models):
    # float64: in float32 the fused and single reductions round differently (~1e-6 on outputs,
    # ~1e-4 on gradients through a narrow VGG's batch norms), which would hide nothing but noise.
    name, fused, singles = models
    fused, singles = fused.double(), [m.double() for m in singles]
    x = randn(len(SEEDS), 5, *SHAPES.get(name, (3, 8, 8))).double()
    y = torch.randint(0, 3, (len(SEEDS), 5), generator=torch.Generator().manual_seed(1))
    out = fused(x)  # [S, B, C]
    sum(F.cross_entropy(out[s], y[s]) for s in range(len(SEEDS))).backward()
    for s, single in enumerate(singles):
        out_s = single(x[s:s + 1])
        torch.testing.assert_close(out[s:s + 1], out_s, atol=1e-10, rtol=1e-10)
        F.cross_entropy(out_s[0], y[s]).backward()
        grads = dict(single.named_parameters())
        for pname, p in fused.named_parameters():
            torch.testing.assert_close(p.grad[s:s + 1], grads[pname].grad, atol=1e-10, rtol=1e-8)
        for bname, buf in fused.named_buffers():  # running batch-norm statistics
            torch.testing.assert_close(unstack_state_dict({bname: buf}, s)[bname],
                                       dict(single.named_buffers())[bname], atol=1e-12, rtol=1e-10)


def test_eval_outputs_match(models):
    name, fused, singles = models
    x = randn(len(SEEDS), 5, *SHAPES.get(name, (3, 8, 8)))
    fused.train()(x)  # move the running statistics away from their init first
    for s, single in enumerate(singles):
        single.train()(x[s:s + 1])
    out = fused.eval()(x)
    for s, single in enumerate(singles):
        torch.testing.assert_close(out[s:s + 1], single.eval()(x[s:s + 1]), atol=1e-5, rtol=1e-5)


def test_state_dicts_round_trip(models):
    name, fused, singles = models
    x = randn(len(SEEDS), 3, *SHAPES.get(name, (3, 8, 8)))
    fused(x)  # non-trivial running statistics
    other = build(name, (1, 2))
    other.load_state_dict(fused.state_dict())
    assert_state_equal(other.state_dict(), fused.state_dict())
    parts = [unstack_state_dict(fused.state_dict(), s) for s in range(len(SEEDS))]
    for s, part in enumerate(parts):
        singles[s].load_state_dict(part)
    assert_state_equal(stack_state_dicts([m.state_dict() for m in singles]), fused.state_dict())
    assert parts[0][next(iter(parts[0]))].untyped_storage().nbytes() < \
        fused.state_dict()[next(iter(parts[0]))].untyped_storage().nbytes()  # cloned, not a view


def test_init_parameters_reinitializes_from_generators(models):
    name, fused, _ = models
    before = {k: v.clone() for k, v in fused.state_dict().items()}
    init_parameters(fused, [torch.Generator().manual_seed(0) for _ in SEEDS])
    assert torch.equal(fused.head.weight[0], fused.head.weight[1])  # same seed, same copies
    init_parameters(fused, [torch.Generator().manual_seed(s) for s in SEEDS])
    assert_state_equal(fused.state_dict(), before)
    with pytest.raises(ValueError, match="generators"):
        init_parameters(fused, [torch.Generator()])


def test_stem_is_affine_and_body_completes_the_forward(models):
    """The measurement shortcut (ddsweep.pipeline.measure.evaluate.predict_affine) relies on the stem being
    an affine map of the input and on body∘stem being the whole feature extractor."""
    name, fused, _ = models
    fused.eval()
    shape = SHAPES.get(name, (3, 8, 8))
    x, y = randn(1, 5, *shape), randn(1, 5, *shape) * 3 + 1
    with torch.no_grad():
        hx, hy = fused.forward_stem(x), fused.forward_stem(y)
        mix = fused.forward_stem(0.25 * x + 0.75 * y)
        torch.testing.assert_close(mix, 0.25 * hx + 0.75 * hy, rtol=1e-5, atol=1e-5)
        assert hx.shape[fused.stem_batch_dim] == 5
        torch.testing.assert_close(fused.forward_body(hx), fused.forward_features(x), rtol=0, atol=0)
