"""Real-ESRGAN's training-pair pool: the same pairs, in the same order, as its ``_dequeue_and_enqueue``."""
import pytest
import torch

from srprep.train.pool import PairPool


class UpstreamPool:
    """RealESRNetModel._dequeue_and_enqueue restated (its torch.randperm given a generator)."""

    def __init__(self, queue_size):
        self.queue_size = queue_size

    def __call__(self, lq, gt, generator):
        b, c, h, w = lq.size()
        if not hasattr(self, "queue_lr"):
            assert self.queue_size % b == 0
            self.queue_lr = torch.zeros(self.queue_size, c, h, w)
            _, c, h, w = gt.size()
            self.queue_gt = torch.zeros(self.queue_size, c, h, w)
            self.queue_ptr = 0
        if self.queue_ptr == self.queue_size:  # the pool is full
            idx = torch.randperm(self.queue_size, generator=generator)
            self.queue_lr = self.queue_lr[idx]
            self.queue_gt = self.queue_gt[idx]
            lq_dequeue = self.queue_lr[0:b, :, :, :].clone()
            gt_dequeue = self.queue_gt[0:b, :, :, :].clone()
            self.queue_lr[0:b, :, :, :] = lq.clone()
            self.queue_gt[0:b, :, :, :] = gt.clone()
            return lq_dequeue, gt_dequeue
        self.queue_lr[self.queue_ptr:self.queue_ptr + b, :, :, :] = lq.clone()
        self.queue_gt[self.queue_ptr:self.queue_ptr + b, :, :, :] = gt.clone()
        self.queue_ptr = self.queue_ptr + b
        return lq, gt


def steps(n, b=2):
    g = torch.Generator().manual_seed(1)
    # each pair is tagged by its step and slot so the test can also see which pairs come out
    return [(torch.full((b, 3, 4, 4), 10.0 * t) + torch.arange(b).view(b, 1, 1, 1),
             torch.rand(b, 3, 8, 8, generator=g)) for t in range(n)]


def test_pool_gives_upstreams_pairs():
    ours, theirs = PairPool(6), UpstreamPool(6)
    for t, (lr, hr) in enumerate(steps(12)):
        a = ours(lr, hr, torch.Generator().manual_seed(100 + t))
        b = theirs(lr, hr, torch.Generator().manual_seed(100 + t))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), t
        if t < 3:  # filling: a step trains on its own pairs
            assert torch.equal(a[0], lr) and ours.filled == 2 * (t + 1)
        else:  # full: pairs of earlier steps come out
            assert not torch.equal(a[0], lr)
    assert torch.equal(ours.lr, theirs.queue_lr) and torch.equal(ours.hr, theirs.queue_gt)


def test_pool_state_round_trip_and_errors():
    pool = PairPool(4)
    data = steps(5)
    for t, (lr, hr) in enumerate(data[:3]):
        pool(lr, hr, torch.Generator().manual_seed(t))
    copy = PairPool(4)
    copy.load_state_dict(pool.state_dict())
    lr, hr = data[3]
    a, b = pool(lr, hr, torch.Generator().manual_seed(9)), copy(lr, hr, torch.Generator().manual_seed(9))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(pool.lr, copy.lr)
    with pytest.raises(ValueError, match="multiple of the batch"):
        PairPool(5)(lr, hr, torch.Generator())
    with pytest.raises(ValueError, match="holds 4 pairs"):
        PairPool(6).load_state_dict(pool.state_dict())
