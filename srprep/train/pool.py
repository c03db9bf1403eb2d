"""Real-ESRGAN's training-pair pool (``RealESRNetModel._dequeue_and_enqueue``), with an explicit generator.

Upstream draws one resize factor, noise type and final order per *batch*; the pool mixes pairs of many batches
so that a step sees several degradations. srprep draws every degradation parameter per sample, so the pool is
not needed for diversity; it is here to train as Real-ESRGAN did (``degrade.queue``).

Behaviour, per process: the pool holds ``size`` pairs (a multiple of the batch ``b``). While it is not full,
a step's pairs are stored at the next free places and the step trains on them unchanged. Once full, each step
shuffles the pool (one ``torch.randperm(size)``), takes its first ``b`` pairs to train on, and puts the step's
own pairs in their places. The permutation comes from the generator passed in (the loop's per-step host
generator), so runs and resumed runs draw the same; the pool's contents are saved with each checkpoint.

>>> pool = PairPool(4)
>>> lr, hr = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 8, 8)
>>> pool(lr, hr, torch.Generator())[0].shape, pool.filled
(torch.Size([2, 3, 4, 4]), 2)
"""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["PairPool"]


class PairPool:
    """A pool of ``size`` training pairs (LR, HR): see the module doc."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"the pool needs a positive size, got {size}")
        self.size = size
        self.lr: Optional[torch.Tensor] = None
        self.hr: Optional[torch.Tensor] = None
        self.filled = 0

    def __call__(self, lr: torch.Tensor, hr: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Put a step's (B, C, h, w) LR and (B, C, H, W) HR batch in; return the pairs to train on.

        ``generator``: a CPU ``torch.Generator`` for the shuffle of a full pool.
        """
        b = lr.shape[0]
        if self.lr is None:
            if self.size % b:
                raise ValueError(f"pool size {self.size} is not a multiple of the batch {b}")
            self.lr = lr.new_zeros((self.size, *lr.shape[1:]))
            self.hr = hr.new_zeros((self.size, *hr.shape[1:]))
        if self.lr.shape[1:] != lr.shape[1:] or self.hr.shape[1:] != hr.shape[1:]:
            raise ValueError(f"pool holds {tuple(self.lr.shape[1:])}/{tuple(self.hr.shape[1:])} pairs, got "
                             f"{tuple(lr.shape[1:])}/{tuple(hr.shape[1:])}")
        if self.filled < self.size:
            self.lr[self.filled:self.filled + b] = lr
            self.hr[self.filled:self.filled + b] = hr
            self.filled += b
            return lr, hr
        idx = torch.randperm(self.size, generator=generator).to(self.lr.device)
        self.lr, self.hr = self.lr[idx], self.hr[idx]
        out = self.lr[:b].clone(), self.hr[:b].clone()
        self.lr[:b] = lr
        self.hr[:b] = hr
        return out

    def state_dict(self) -> dict:
        """Tensors on the CPU and the fill count (loadable with ``weights_only``)."""
        return {"size": self.size, "filled": self.filled,
                "lr": None if self.lr is None else self.lr.cpu(), "hr": None if self.hr is None else self.hr.cpu()}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        if int(state["size"]) != self.size:
            raise ValueError(f"the saved pool holds {state['size']} pairs, this run's {self.size}")
        self.filled = int(state["filled"])
        self.lr = None if state["lr"] is None else state["lr"].to(device)
        self.hr = None if state["hr"] is None else state["hr"].to(device)
