import math

import pytest
import torch

from ddsweep.pipeline.measure.repro import (
    disagreement_matrix,
    mean_over_pairs,
    LOG_PROB_FLOOR,
    label_disagreement_matrix,
    pd_l1,
    pd_l1_matrix,
    prob_l1_matrix,
    probabilities,
    plane_agreement,
    plane_agreement_matrix,
    test_disagreement as disagreement,  # not collected as a test
)


def test_identical_models():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 20, 5, generator=g).expand(2, 20, 5)
    labels = torch.randint(0, 5, (1, 3, 6, 6), generator=g).expand(2, 3, 6, 6)
    assert plane_agreement(labels) == 1.0
    assert disagreement(logits) == 0.0
    assert pd_l1(logits) == 0.0


def test_class_swapped_model():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(30, 2, generator=g)
    swapped = logits.flip(-1)
    both = torch.stack([logits, swapped])
    assert disagreement(both) == 1.0  # no ties with continuous logits
    p = logits.double().softmax(-1)
    expected = (p[:, 0] - p[:, 1]).abs().mean().item()  # ½(|p0−p1| + |p1−p0|)
    assert pd_l1(both) == pytest.approx(expected, abs=1e-7)  # fp32 probabilities, float64 sums
    labels = torch.stack([torch.zeros(2, 4, 4), torch.ones(2, 4, 4)]).long()
    assert plane_agreement(labels) == 0.0


def test_single_model_gives_none_not_zero():
    assert plane_agreement(torch.zeros(1, 2, 3, 3, dtype=torch.long)) is None
    assert disagreement(torch.zeros(1, 4, 3)) is None
    assert pd_l1(torch.zeros(1, 4, 3)) is None


def test_pd_l1_by_hand():
    p1 = torch.tensor([[0.4, 0.6], [0.2, 0.8]])
    p2 = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    logits = torch.stack([p1.log(), p2.log()])
    # point 1: ½(0.5 + 0.5) = 0.5; point 2: 0; mean 0.25
    assert pd_l1(logits) == pytest.approx(0.25, abs=1e-6)
    assert disagreement(logits) == 0.5


def test_mean_over_pairs_with_three_models():
    labels = torch.tensor([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 0, 1]])
    m = plane_agreement_matrix(labels)
    assert torch.equal(m, m.T) and torch.all(m.diagonal() == 1)
    assert m[0, 1] == 0.75 and m[0, 2] == 0.25 and m[1, 2] == 0.5
    assert plane_agreement(labels) == pytest.approx(0.5)
    onehot = torch.nn.functional.one_hot(labels, 2).float() * 50  # near-hard probabilities
    d = disagreement_matrix(onehot)
    torch.testing.assert_close(d, 1 - m)
    assert disagreement(onehot) == pytest.approx(0.5)
    assert pd_l1(onehot) == pytest.approx(0.5, abs=1e-6)
    assert mean_over_pairs(torch.tensor([[0., 1., 2.], [1., 0., 3.], [2., 3., 0.]])) == 2.0
    assert math.isclose(pd_l1_matrix(onehot)[0, 2].item(), 0.75, abs_tol=1e-6)


def test_probabilities_floor_keeps_extreme_logits_exact():
    # logits 300 apart: the smaller probability is exp(-300), which float32 cannot hold (0, or a
    # subnormal on the way); floored at exp(-80) it changes the L1 difference by < 1e-34
    logits = torch.tensor([[[300.0, 0.0], [0.0, 1.0]], [[0.0, 300.0], [0.0, 1.0]]])
    log_probs = logits.log_softmax(-1)
    p = probabilities(log_probs)
    assert p.min().item() == pytest.approx(math.exp(LOG_PROB_FLOOR), rel=1e-6)
    assert torch.equal(p[:, 1], log_probs[:, 1].exp())  # above the floor: the plain exponential
    assert pd_l1(logits) == pytest.approx(0.5, abs=1e-7)  # point 1 differs fully, point 2 not at all
    assert prob_l1_matrix(p)[0, 1].item() == pd_l1(logits)


def test_label_forms_equal_the_logit_forms():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 50, 4, generator=g)
    assert torch.equal(label_disagreement_matrix(logits.argmax(-1)), disagreement_matrix(logits))
    assert torch.equal(prob_l1_matrix(probabilities(logits.log_softmax(-1))), pd_l1_matrix(logits))
