import lightning as L
import pytest
import torch

from ddsweep.data.loader import Augment, DeviceBatches
from ddsweep.data.module import DDDataModule
from ddsweep.data.noise import apply_label_noise
from ddsweep.data.sources import Dataset, load_source
from ddsweep.errors import DataError


def tiny_image_dataset(n=12, m=5):
    x = torch.randn(n + m, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    x[:, 0, 0, 0] = torch.arange(n + m, dtype=torch.float32)  # pixel (0,0,0) = sample index
    y = torch.arange(n + m) % 3
    return Dataset(name="tiny", x_train=x[:n], y_train=y[:n], x_test=x[n:], y_test=y[n:], num_classes=3,
                   class_names=("a", "b", "c"), in_shape=(1, 4, 4), mean=None, std=None, is_image=True)


class Recorder(L.LightningModule):
    """S linear models on flattened inputs; records what the loaders feed it."""

    def __init__(self, slots, features, classes):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(slots, features, classes))
        self.first_batches, self.train_indices = [], []

    def forward(self, x):  # [S, B, *in_shape] -> [S, B, C]
        return torch.einsum("sbf,sfc->sbc", x.flatten(2), self.weight)

    def training_step(self, batch, batch_idx):
        assert isinstance(batch, list)  # a chunk of consecutive mini-batches (data.module.STEPS_PER_CALL)
        losses = []
        for i, (x, y) in enumerate(batch):
            if batch_idx == 0 and i == 0:
                self.first_batches.append(x.clone())
            self.train_indices.append((self.current_epoch, x[:, :, 0, 0, 0].long().clone()))
            losses.append(torch.nn.functional.cross_entropy(self(x).flatten(0, 1), y.flatten()))
        return sum(losses)


    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(order_seeds, epochs=2, augment=None, device="cpu"):
    dataset = tiny_image_dataset()
    labels = apply_label_noise(dataset.y_train, 3, kind="symmetric", rate=0.25, seed=0)
    datamodule = DDDataModule(dataset, labels, batch_size=5, order_seeds=order_seeds,
                              window=None, augment=augment, device=device)
    model = Recorder(len(order_seeds), 16, 3)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        log_every_n_steps=1)
    trainer.fit(model, datamodule=datamodule)
    return model, datamodule


def test_trainer_reshuffles_every_epoch_and_reproduces():
    model, datamodule = fit([0, 1], epochs=3)
    assert len(model.first_batches) == 3 and model.first_batches[0].shape == (2, 5, 1, 4, 4)
    epochs = [torch.cat([idx for e, idx in model.train_indices if e == epoch], dim=1) for epoch in range(3)]
    for order in epochs:
        assert order.shape == (2, 12)
        assert all(torch.equal(slot.sort().values, torch.arange(12)) for slot in order)
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])
    assert not torch.equal(epochs[0][0], epochs[0][1])  # different order seeds, different orders
    again, _ = fit([0, 1], epochs=3)
    assert all(torch.equal(a, b) for a, b in zip(model.first_batches, again.first_batches))
    # a fresh loader set to epoch 2 (a resumed run) replays the trainer's epoch 2
    t = datamodule.tensors
    resumed = DeviceBatches(t["x_train"], t["y_noisy"], batch_size=5, order_seeds=[0, 1], window=None, augment=None)
    resumed.set_epoch(2)
    assert torch.equal(next(iter(resumed))[0], model.first_batches[2])


def test_data_on_the_trainers_device_and_one_order_for_equal_seeds():
    model, datamodule = fit([3, 3, 3], epochs=1, augment=Augment(crop=True, flip=True, pad=1), device=None)
    assert datamodule.tensors["x_train"].device == torch.device("cpu")  # the trainer's device
    assert all(torch.equal(b[0], b[1]) and torch.equal(b[0], b[2]) for b in model.first_batches)


def test_datamodule_rejects_augmenting_vectors():
    dataset = load_source("moons", train_size=20, test_size=5)
    labels = apply_label_noise(dataset.y_train, 2, kind="uniform", rate=0.0, seed=0)
    with pytest.raises(DataError, match=r"^data\.augment: crop and flip need image inputs \[C, H, W\]; moons inputs are \[2\]"):
        DDDataModule(dataset, labels, batch_size=4, order_seeds=[0], window=None,
                     augment=Augment(crop=False, flip=True))


def test_resume_from_checkpoint_replays_the_next_epoch(tmp_path):
    uninterrupted, _ = fit([0, 1], epochs=3)
    first, datamodule = fit([0, 1], epochs=2)
    path = tmp_path / "two_epochs.ckpt"
    first.trainer.save_checkpoint(path)
    resumed = Recorder(2, 16, 3)
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(resumed, datamodule=datamodule, ckpt_path=path)
    assert len(resumed.first_batches) == 1
    assert torch.equal(resumed.first_batches[0], uninterrupted.first_batches[2])


def test_chunks_hold_every_mini_batch_once_in_order_and_respect_the_byte_cap(monkeypatch):
    import ddsweep.data.module as M

    dataset = tiny_image_dataset(n=12)
    labels = apply_label_noise(dataset.y_train, 3, kind="symmetric", rate=0.0, seed=0)
    datamodule = DDDataModule(dataset, labels, batch_size=2, order_seeds=[0, 1], window=None, augment=None)
    plain = DeviceBatches(datamodule.tensors["x_train"], datamodule.tensors["y_noisy"], batch_size=2,
                          order_seeds=[0, 1], window=None, augment=None)
    for steps, cap, sizes in ((16, 1 << 20, [6]), (4, 1 << 20, [4, 2]), (16, 2 * 2 * 16 * 4 * 3, [3, 3])):
        monkeypatch.setattr(M, "STEPS_PER_CALL", steps)
        monkeypatch.setattr(M, "CHUNK_BYTES", cap)
        loader = datamodule.train_dataloader()
        chunks = list(loader)
        assert [len(c) for c in chunks] == sizes and len(loader) == len(sizes)
        pairs = [pair for chunk in chunks for pair in chunk]
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(pairs, plain, strict=True))
