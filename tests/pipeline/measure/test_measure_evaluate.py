import pytest
import torch
from torch import nn

from ddsweep.models import create_model, list_models
from ddsweep.pipeline.measure.evaluate import (as_logits_fn, batched_logits, predict_affine, predict_labels,
                                       log_softmax_classes, split_metrics, split_outputs)
from ddsweep.pipeline.measure.margin import geometric_steps, margins
from ddsweep.pipeline.measure.planes import predict_planes
from ddsweep.pipeline.measure.regions import segment_counts, triangle_label_maps


class Stacked(nn.Module):
    """S linear models at once: x [S or 1, B, D] -> [S, B, C]; BN-free but mode-sensitive."""

    def __init__(self, S=3, D=4, C=5):
        super().__init__()
        self.w = nn.Parameter(torch.randn(S, D, C))
        self.drop = nn.Dropout(0.9)

    def forward(self, x):
        return torch.einsum("sbd,sdc->sbc", self.drop(x).expand(self.w.shape[0], -1, -1), self.w)


def test_as_logits_fn_shape_eval_mode_and_restore():
    torch.manual_seed(0)
    model = Stacked().train()
    fn = as_logits_fn(model)
    x = torch.randn(7, 4)
    out = fn(x)
    assert out.shape == (3, 7, 5)
    assert torch.equal(out, fn(x))  # eval mode: dropout off, deterministic
    assert not out.requires_grad
    assert model.training
    model.eval()
    fn(x)
    assert not model.training


def test_as_logits_fn_accepts_model_without_seed_axis():
    model = nn.Sequential(nn.Flatten(0, 1), nn.Linear(4, 2))  # [1, N, 4] -> [N, 2]
    assert as_logits_fn(model)(torch.randn(6, 4)).shape == (1, 6, 2)


def test_batched_logits_chunking_matches():
    torch.manual_seed(1)
    model = Stacked()
    x = torch.randn(11, 4)
    full = batched_logits(model, x, batch_size=100)
    chunked = batched_logits(model, x, batch_size=3)
    assert full.shape == (3, 11, 5) and full.dtype == torch.float32
    torch.testing.assert_close(full, chunked)
    torch.testing.assert_close(batched_logits(as_logits_fn(model), x, 4), full)


def test_predict_labels_bounds_chunk_size():
    sizes = []

    def fn(x):
        sizes.append(x.shape[0])
        return torch.stack([x, -x], dim=-1).squeeze(-2)[None]  # x [n, 1] -> [1, n, 2]

    labels = predict_labels(fn, 10, lambda s, e: torch.arange(s, e).float()[:, None] - 4.5,
                            max_points_per_call=4)
    assert sizes == [4, 4, 2]
    assert labels.tolist() == [[1] * 5 + [0] * 5]


def test_split_metrics_by_hand():
    # S=2 seeds, N=4 points, C=3 classes; predictions via large one-hot logits
    pred = torch.tensor([[0, 1, 2, 2], [0, 0, 1, 0]])
    logits = nn.functional.one_hot(pred, 3).float() * 4.0
    y_noisy = torch.tensor([0, 1, 2, 0])
    y_clean = torch.tensor([0, 0, 1, 0])  # points 1 and 2 mislabeled
    m = split_metrics(logits, y_noisy, y_clean)
    assert m["error"].tolist() == [0.25, 0.5]  # seed 0 wrong on 3; seed 1 wrong on 1, 2
    assert m["clean_error"].tolist() == [0.75, 0.0]
    assert m["memorized"].tolist() == [1.0, 0.0]
    log_p_right = torch.log_softmax(torch.tensor([4.0, 0, 0]), 0)[0]
    log_p_wrong = torch.log_softmax(torch.tensor([4.0, 0, 0]), 0)[1]
    expected0 = -(3 * log_p_right + log_p_wrong) / 4
    expected1 = -(2 * log_p_right + 2 * log_p_wrong) / 4
    torch.testing.assert_close(m["loss"], torch.stack([expected0, expected1]))
    explicit = split_metrics(logits, y_noisy, y_clean, changed=torch.tensor([0, 1, 0, 0]).bool())
    assert explicit["memorized"].tolist() == [1.0, 0.0]


def test_split_metrics_share_one_log_softmax_and_argmax():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 300, 10, generator=g) * 20
    y_noisy, y_clean = torch.randint(0, 10, (300,), generator=g), torch.randint(0, 10, (300,), generator=g)
    outputs = split_outputs(logits)
    assert torch.equal(outputs.labels, logits.argmax(-1))
    m = split_metrics(logits, y_noisy, y_clean)
    # the loss is F.cross_entropy's (to float rounding: the log-softmax runs on the [S, C, N] view)
    ce = nn.functional.cross_entropy(logits.reshape(600, 10), y_noisy.repeat(2), reduction="none")
    torch.testing.assert_close(m["loss"], ce.view(2, 300).mean(dim=1), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(outputs.log_probs, logits.log_softmax(-1), rtol=1e-6, atol=1e-5)
    shared = split_metrics(outputs, y_noisy, y_clean)
    assert set(shared) == set(m) and all(torch.equal(shared[k], m[k]) for k in m)


def test_split_metrics_without_noise_or_clean_labels():
    logits = torch.randn(2, 6, 3)
    y = torch.randint(0, 3, (6,))
    m = split_metrics(logits, y, y_clean=y)
    assert "memorized" not in m and m["clean_error"].tolist() == m["error"].tolist()
    assert set(split_metrics(logits, y)) == {"loss", "error"}


def test_bad_batch_size():
    with pytest.raises(ValueError):
        batched_logits(lambda x: x[None], torch.zeros(2, 2), 0)


# ------------------------------------------------------------------ first-layer shortcut

_SHAPES = {"cnn1dk": (40,), "mlpk": (6,)}


def _family(name: str):
    gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
    model = create_model(name, width=3, in_shape=_SHAPES.get(name, (3, 8, 8)), num_classes=4,
                         copies=2, generators=gens)
    x = torch.randn(12, *_SHAPES.get(name, (3, 8, 8)), generator=torch.Generator().manual_seed(1))
    return model, x


def _agree(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a == b).double().mean().item()


@pytest.mark.parametrize("name", list_models())
def test_affine_stem_gives_the_same_labels_as_the_whole_model(name):
    """Planes, 1-D segments, triangles and margins through the stem shortcut equal the plain
    evaluation of every point, up to pixels where rounding flips a near-tie."""
    model, x = _family(name)
    model.train()  # the wrappers evaluate in eval mode and restore this
    fast, plain = as_logits_fn(model), as_logits_fn(model, affine_stem=False)
    assert fast.stem_batch_dim is not None and plain.stem_batch_dim is None
    anchors = x[:9].reshape(3, 3, *x.shape[1:])
    maps = [predict_planes(fn, anchors, 24, 0.5, max_points_per_call=500) for fn in (fast, plain)]
    assert maps[0].shape == (2, 3, 24, 24) and maps[0].unique().numel() > 1
    assert _agree(*maps) >= 0.998
    segs = [segment_counts(fn, x[:6], x[6:], 40, max_points_per_call=64) for fn in (fast, plain)]
    assert _agree(*segs) >= 0.9
    tri = [triangle_label_maps(fn, x[:3], x[3:6], x[6:9], 20) for fn in (fast, plain)]
    assert _agree(*tri) >= 0.998
    steps = geometric_steps(1e-3, 10.0, 30)
    m = [margins(fn, x[:6], x[6:], steps, max_points_per_call=50) for fn in (fast, plain)]
    assert _agree(*m) >= 0.9
    assert model.training


def test_predict_affine_builds_the_stated_points():
    """Without a stem the points are origins[t] + Σ c_j directions[t, j], slice by slice."""
    seen = []

    def fn(x):
        seen.append(x.clone())
        return torch.stack([x.sum(-1), -x.sum(-1)], -1)[None]  # [1, n, 2]

    origins = torch.tensor([[1.0, 0.0], [0.0, 5.0]])
    directions = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 0.0]]])
    coef = torch.tensor([[0.5, 2.0], [1.0, 1.0], [-1.0, 3.0]])
    t = torch.tensor([0, 1, 1])
    labels = predict_affine(fn, origins, directions, lambda a, b: (t[a:b], coef[a:b]), 3,
                            max_points_per_call=2)
    pts = torch.cat(seen)
    torch.testing.assert_close(pts, torch.tensor([[1.5, 2.0], [2.0, 5.0], [-2.0, 5.0]]))
    assert [len(s) for s in seen] == [2, 1]
    assert labels.tolist() == [[0, 0, 0]]


def test_eval_rows_keep_an_mlps_first_layer_output_near_the_cap():
    from ddsweep.models import create_model
    from ddsweep.pipeline.measure.evaluate import CPU_EVAL_CHUNK_BYTES, CPU_EVAL_MIN_ROWS, eval_rows

    def mlp(width, copies=2):
        return create_model("mlpk", width=width, in_shape=(40,), num_classes=10, activation="relu", copies=copies,
                            generators=[torch.Generator().manual_seed(s) for s in range(copies)])

    x = torch.randn(50, 40)
    assert eval_rows(mlp(300), x, 2048) == CPU_EVAL_CHUNK_BYTES // (4 * 2 * 300)  # 218 rows of [2, rows, 300]
    assert eval_rows(mlp(300, copies=1), x, 2048) == CPU_EVAL_CHUNK_BYTES // (4 * 300)
    assert eval_rows(mlp(36), x, 1000) == 1000  # never more than asked
    assert eval_rows(mlp(10_000), x, 2048) == CPU_EVAL_MIN_ROWS  # never fewer than the floor
    cnn = create_model("cnn5k", width=2, in_shape=(1, 8, 8), num_classes=10, activation="relu", copies=2,
                       generators=[torch.Generator().manual_seed(s) for s in range(2)])
    assert eval_rows(cnn, torch.randn(4, 1, 8, 8), 2048) == 2048  # convolutions: the batch size as asked


def test_evaluation_in_capped_calls_gives_the_same_metrics():
    from ddsweep.models import create_model
    from ddsweep.pipeline.train.epoch import evaluate

    net = create_model("mlpk", width=300, in_shape=(40,), num_classes=10, activation="relu", copies=2,
                       generators=[torch.Generator().manual_seed(s) for s in range(2)])
    tensors = {"x_train": torch.randn(700, 40), "x_test": torch.randn(500, 40)}
    capped = evaluate(net, tensors, 2048)  # 218-row calls
    whole = {k: batched_logits(as_logits_fn(net, affine_stem=False), tensors[f"x_{k}"], 2048) for k in ("train", "test")}
    for split in ("train", "test"):
        torch.testing.assert_close(capped[split], whole[split], rtol=1e-5, atol=1e-6)
        assert torch.equal(capped[split].argmax(-1), whole[split].argmax(-1))


@pytest.mark.parametrize("classes", [2, 10, 100])
def test_log_softmax_classes_is_log_softmax(classes):
    g = torch.Generator().manual_seed(classes)
    logits = torch.randn(3, 1001, classes, generator=g, dtype=torch.float64) * 30
    out = log_softmax_classes(logits)
    assert out.dtype == torch.float32 and out.shape == logits.shape
    torch.testing.assert_close(out, logits.float().log_softmax(-1), rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(3, 1001), rtol=0, atol=1e-5)
