import pytest
import torch
from torch import nn

from pipeline.measure.evaluate import as_logits_fn, batched_logits, predict_labels, split_metrics


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


def test_split_metrics_without_noise_or_clean_labels():
    logits = torch.randn(2, 6, 3)
    y = torch.randint(0, 3, (6,))
    m = split_metrics(logits, y, y_clean=y)
    assert "memorized" not in m and m["clean_error"].tolist() == m["error"].tolist()
    assert set(split_metrics(logits, y)) == {"loss", "error"}


def test_bad_batch_size():
    with pytest.raises(ValueError):
        batched_logits(lambda x: x[None], torch.zeros(2, 2), 0)
