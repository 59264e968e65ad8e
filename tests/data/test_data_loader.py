import pytest
import torch

from ddsweep.data.loader import Augment, DeviceBatches, shuffle_order
from ddsweep.errors import DataError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def is_permutation(order, n):
    return order.dtype == torch.int64 and torch.equal(order.sort().values, torch.arange(n))


def test_shuffle_order_extremes():
    assert torch.equal(shuffle_order(50, 1, gen()), torch.arange(50))
    for window in (None, 50, 1000):
        order = shuffle_order(50, window, gen())
        assert is_permutation(order, 50) and not torch.equal(order, torch.arange(50))
    assert torch.equal(shuffle_order(50, None, gen(3)), shuffle_order(50, None, gen(3)))
    with pytest.raises(DataError, match=r"^data\.window: must be a positive integer or null"):
        shuffle_order(10, 0, gen())


@pytest.mark.parametrize("window", [2, 7, 40])
def test_shuffle_buffer_is_a_local_permutation(window):
    n = 500
    order = shuffle_order(n, window, gen(window))
    assert is_permutation(order, n)
    assert torch.equal(order, shuffle_order(n, window, gen(window)))
    position = torch.arange(n)
    # index i enters the buffer after i - window + 1 emissions: it cannot come out earlier
    assert torch.all(order < position + window)
    assert torch.any(order == position + window - 1)  # the bound is reached
    # but an index can wait in the buffer longer than `window` steps (geometric delay)
    where = torch.empty(n, dtype=torch.int64)
    where[order] = position
    assert (where - position).max() >= window
    # a larger window moves indices further on average
    if window < 40:
        wider = shuffle_order(n, 40, gen(window))
        assert (wider - position).abs().float().mean() > (order - position).abs().float().mean()


def indexed_images(n, c=2, h=4, w=5):
    """[n, c, h, w] images whose pixel (0,0,0) is the image's index."""
    x = torch.randn(n, c, h, w, generator=gen(1))
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32)
    return x


def epoch_indices(batches):
    """Per slot, the concatenated sample indices of one epoch: [S, N]."""
    return torch.cat([x[:, :, 0, 0, 0].long() for x, _ in batches], dim=1)


def test_device_batches_shapes_and_partial_last_batch():
    x, y = indexed_images(10), torch.arange(10) * 3
    batches = DeviceBatches(x, y, batch_size=4, order_seeds=[0, 1, 2], window=None, augment=None)
    assert len(batches) == 3
    got = list(batches)
    assert [tuple(b[0].shape) for b in got] == [(3, 4, 2, 4, 5), (3, 4, 2, 4, 5), (3, 2, 2, 4, 5)]
    assert [tuple(b[1].shape) for b in got] == [(3, 4), (3, 4), (3, 2)]
    for xb, yb in got:
        assert torch.equal(yb, xb[:, :, 0, 0, 0].long() * 3)  # labels travel with their images
    for slot in epoch_indices(got):
        assert is_permutation(slot, 10)


def test_same_order_seeds_give_identical_slots():
    x, y = indexed_images(12), torch.arange(12)
    shared = list(DeviceBatches(x, y, batch_size=5, order_seeds=[4, 4, 4], window=None, augment=Augment(True, True, 2)))
    for xb, yb in shared:
        assert torch.equal(xb[0], xb[1]) and torch.equal(xb[0], xb[2]) and torch.equal(yb[0], yb[2])
    mixed = list(DeviceBatches(x, y, batch_size=5, order_seeds=[4, 9, 4], window=None, augment=Augment(True, True, 2)))
    idx = epoch_indices(mixed)
    assert torch.equal(idx[0], idx[2]) and not torch.equal(idx[0], idx[1])
    assert all(torch.equal(xb[0], xb[2]) for xb, _ in mixed)
    # the slot with seed 4 sees the same batches whatever the other slots are
    assert all(torch.equal(a[0][0], b[0][0]) for a, b in zip(shared, mixed))
    single = list(DeviceBatches(x, y, batch_size=5, order_seeds=[9], window=None, augment=Augment(True, True, 2)))
    assert all(torch.equal(a[0][1], b[0][0]) for a, b in zip(mixed, single))


def test_orders_depend_on_seed_and_epoch_only():
    x, y = indexed_images(30), torch.arange(30)
    a = DeviceBatches(x, y, batch_size=8, order_seeds=[0, 1], window=None, augment=Augment(False, True))
    first, second = epoch_indices(a), None
    a.set_epoch(1)
    second = epoch_indices(a)
    assert not torch.equal(first[0], second[0])
    assert torch.equal(epoch_indices(a), second)  # iterating again replays the epoch
    resumed = DeviceBatches(x, y, batch_size=8, order_seeds=[0, 1], window=None, augment=Augment(False, True))
    resumed.set_epoch(1)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, resumed))  # images, augmentation included
    fixed = DeviceBatches(x, y, batch_size=8, order_seeds=[0, 1], window=1, augment=None)
    fixed.set_epoch(5)
    assert torch.equal(epoch_indices(fixed), torch.arange(30).expand(2, -1))


def test_windowed_device_batches_use_the_buffer_order():
    x, y = indexed_images(40), torch.arange(40)
    batches = DeviceBatches(x, y, batch_size=16, order_seeds=[2], window=5, augment=None)
    idx = epoch_indices(batches)[0]
    assert is_permutation(idx, 40) and torch.all(idx < torch.arange(40) + 5) and not torch.equal(idx, torch.arange(40))


def test_flip_flips_half_the_batch():
    x = torch.randn(64, 3, 6, 6, generator=gen(0))
    out = Augment(crop=False, flip=True)(x, gen(1))
    assert out.shape == x.shape
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert torch.all(flipped ^ kept) and 10 < int(flipped.sum()) < 54


def shifted(x, dy, dx, fill):
    """x [C, H, W] moved so that out[i, j] = x[i + dy, j + dx], `fill` outside."""
    c, h, w = x.shape
    out = fill.view(c, 1, 1).expand(c, h, w).clone()
    rows, cols = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    src_rows, src_cols = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
    out[:, rows, cols] = x[:, src_rows, src_cols]
    return out


@pytest.mark.parametrize("fill", [None, (-1.5, 2.0, 0.25)])
def test_crop_shifts_by_at_most_pad(fill):
    pad = 2
    x = torch.rand(64, 3, 7, 6, generator=gen(0)) + 10  # no pixel equals a fill value
    out = Augment(crop=True, flip=False, pad=pad, fill=fill)(x, gen(2))
    assert out.shape == x.shape
    fill_t = torch.zeros(3) if fill is None else torch.tensor(fill)
    shifts = set()
    for o, xi in zip(out, x):
        found = [(dy, dx) for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)
                 if torch.equal(o, shifted(xi, dy, dx, fill_t))]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 12  # most of the 25 shifts occur in 64 draws


def test_augment_for_dataset_pads_black_and_validates():
    class Stats:
        mean, std = (0.5, 0.25), (0.5, 0.25)

    assert Augment.for_dataset(Stats, crop=True, flip=False).fill == (-1.0, -1.0)
    with pytest.raises(DataError, match=r"^data\.augment\.pad: "):
        Augment(crop=True, flip=False, pad=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_stay_on_device_without_host_sync():
    x, y = indexed_images(100).cuda(), torch.arange(100, device="cuda")
    batches = DeviceBatches(x, y, batch_size=16, order_seeds=[0, 1, 1], window=None,
                            augment=Augment(True, True, 2, fill=(0.5, -0.5)))
    iterator = iter(batches)
    first = next(iterator)  # the epoch's orders are copied to the device here, once
    torch.cuda.set_sync_debug_mode("error")
    try:
        rest = list(iterator)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert all(b[0].is_cuda and b[1].is_cuda for b in [first, *rest]) and len(rest) == 6
    assert all(torch.equal(b[0][1], b[0][2]) for b in [first, *rest])
    cpu = DeviceBatches(x.cpu(), y.cpu(), batch_size=16, order_seeds=[0, 1, 1], window=None, augment=None)
    gpu = DeviceBatches(x, y, batch_size=16, order_seeds=[0, 1, 1], window=None, augment=None)
    assert all(torch.equal(c[1], g[1].cpu()) for c, g in zip(cpu, gpu))  # orders are device-independent


@pytest.mark.parametrize("order_seeds", [[5, 5, 5], [1, 2, 3], [1, 1, 2]])
def test_per_slot_labels_follow_each_slots_own_order(order_seeds):
    """y [S, N]: slot s reads its own labels y[s] at its own data order (fused runs' noise levels)."""
    n = 23
    x = torch.arange(n, dtype=torch.float32)[:, None]  # x's value is its index
    y = torch.stack([torch.arange(n) * (s + 1) for s in range(3)])  # slot s: label = index * (s + 1)
    slots = DeviceBatches(x, y, batch_size=5, order_seeds=order_seeds, window=None, augment=None)
    shared = DeviceBatches(x, y[0], batch_size=5, order_seeds=order_seeds, window=None, augment=None)
    for (xs, ys), (xs0, ys0) in zip(slots, shared, strict=True):
        assert ys.shape == xs.shape[:2] == ys0.shape
        index = xs[..., 0].long()  # [S, B]
        for s in range(3):
            assert torch.equal(ys[s], index[s] * (s + 1))
        assert torch.equal(xs, xs0) and torch.equal(ys[0], ys0[0])
    with pytest.raises(ValueError, match="2 slots"):
        DeviceBatches(x, y[:2], batch_size=5, order_seeds=order_seeds, window=None, augment=None)
