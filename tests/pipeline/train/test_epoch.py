"""The epoch record's bookkeeping: the metrics of METHODS computed once per split, equal to the
measurement functions each one names."""
import torch

from ddsweep.pipeline.measure.evaluate import split_metrics
from ddsweep.pipeline.measure.repro import pd_l1, test_disagreement as disagreement
from ddsweep.pipeline.train.epoch import Targets, bookkeeping


def test_bookkeeping_equals_the_named_metrics():
    g = torch.Generator().manual_seed(0)
    logits = {"train": torch.randn(3, 200, 10, generator=g) * 30, "test": torch.randn(3, 500, 10, generator=g) * 30}
    clean = torch.randint(0, 10, (200,), generator=g)
    changed = torch.rand(200, generator=g) < 0.2
    noisy = torch.where(changed, (clean + 1) % 10, clean)
    targets = Targets(noisy, clean, changed, torch.randint(0, 10, (500,), generator=g))
    out = bookkeeping(logits, targets)
    train = split_metrics(logits["train"], noisy, clean, changed)
    test = split_metrics(logits["test"], targets.test)
    pairs = {"train/loss": train["loss"], "train/error": train["error"], "train/error_clean": train["clean_error"],
             "train/memorized": train["memorized"], "test/loss": test["loss"], "test/error": test["error"]}
    assert set(out) == set(pairs) | {"repro/test_disagreement", "repro/pd_l1"}
    for key, value in pairs.items():
        assert torch.equal(out[key], value), key
    assert out["repro/test_disagreement"] == disagreement(logits["test"])
    assert out["repro/pd_l1"] == pd_l1(logits["test"])


def test_bookkeeping_of_one_seed_has_no_reproducibility():
    logits = {"train": torch.randn(1, 20, 3), "test": torch.randn(1, 30, 3)}
    y = torch.zeros(20, dtype=torch.long)
    out = bookkeeping(logits, Targets(y, y, torch.zeros(20, dtype=torch.bool), torch.zeros(30, dtype=torch.long)))
    assert "repro/pd_l1" not in out and "repro/test_disagreement" not in out and "train/memorized" not in out
