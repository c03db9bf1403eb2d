"""Optimisers (Adam, AdamW, Lamb), learning-rate schedules, gradient clipping and an EMA of the weights.

Skipping a step (ECO's guard against loss spikes, from its trainer): the update is skipped when the step's
loss exceeds ``skip_threshold`` (5) times the loss of the last *accepted* step (not a running average; a
skipped step leaves that reference unchanged). ECO starts the reference at 100 on its 0-255 loss scale, which
no first step reaches; here it starts at +inf. Unlike ECO, whose scheduler only advances on accepted steps,
the learning rate here is a function of the step count, skipped or not (that keeps resuming exact).

Deciding on the host would stall the GPU queue every step, so the decision stays a 0-dim tensor and is handed
to the optimiser as ``optimizer.found_inf`` (the protocol of ``torch.amp.GradScaler``): fused Adam/AdamW then
leave weights, moments and step count as they were, and :class:`Lamb` does the same with arithmetic masks.
"""
from __future__ import annotations

import copy
import math
from bisect import bisect_right
from typing import Iterable, Optional

import torch
from torch import nn

from srprep.errors import SrprepError

__all__ = ["Lamb", "build_optimizer", "lr_factor", "cosine_restart_factor", "LrSchedule", "ModelEma",
           "clip_gradients"]


class Lamb(torch.optim.Optimizer):
    """LAMB (You et al., "Large Batch Optimization for Deep Learning", ICLR 2020), as ECO trains EDSR/RCAN.

    Per tensor: Adam moments ``m, v``; ``u = m / (sqrt(v) + eps) + weight_decay * w``; the step is scaled by
    the trust ratio ``min(||w||, clamp_value) / ||u||`` (1 when either norm is 0). Like the paper's v3 and
    the implementation ECO uses, moments are not bias-corrected unless ``debias=True``.

    Every decision is tensor arithmetic (no ``.item()``), and ``self.found_inf`` (a 0-dim float tensor,
    1 = skip) freezes weights, moments and step count for that call.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, clamp_value: float = 10.0, debias: bool = False):
        if lr <= 0 or eps < 0 or weight_decay < 0 or clamp_value <= 0:
            raise ValueError(f"Lamb: invalid lr={lr}, eps={eps}, weight_decay={weight_decay} or "
                             f"clamp_value={clamp_value}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Lamb: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      clamp_value=clamp_value, debias=debias))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        found_inf = getattr(self, "found_inf", None)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                keep = None if found_inf is None else 1.0 - found_inf.to(p.device, torch.float32)
                if keep is None:
                    t.add_(1.0)
                    m.lerp_(g, 1.0 - beta1)
                    v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
                else:
                    t.add_(keep)
                    m.lerp_(g, keep.to(m.dtype) * (1.0 - beta1))
                    v.lerp_(g * g, keep.to(v.dtype) * (1.0 - beta2))
                update = m / (v.sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                w_norm = p.norm().clamp(max=group["clamp_value"])
                u_norm = update.norm()
                trust = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm.clamp(min=1e-30),
                                    torch.ones_like(w_norm))
                scale = trust * (-group["lr"])
                if group["debias"]:
                    tt = t.clamp(min=1.0)
                    scale = scale * torch.sqrt(1.0 - beta2 ** tt) / (1.0 - beta1 ** tt)
                if keep is not None:
                    scale = scale * keep
                p.add_(update * scale.to(p.dtype))
        return loss


def build_optimizer(params: Iterable[nn.Parameter], cfg, device: torch.device) -> torch.optim.Optimizer:
    """Adam / AdamW (fused kernels, which honour ``found_inf``) or :class:`Lamb` from an OptimConfig."""
    params = [p for p in params if p.requires_grad]
    betas = tuple(cfg.betas)
    if cfg.name in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
        fused = device.type in ("cuda", "cpu")
        return cls(params, lr=cfg.lr, betas=betas, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=fused or None)
    if cfg.name == "lamb":
        return Lamb(params, lr=cfg.lr, betas=betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    raise SrprepError(f"optim.name: unknown optimiser {cfg.name!r}; choose adam, adamw or lamb")


def lr_factor(step: int, total: int, cfg) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) for a ScheduleConfig.

    ``cosine``: half a cosine from 1 to ``min_lr / lr`` over ``total`` steps (the floor applied to the rate);
    ``cosine_restart``: BasicSR's ``CosineAnnealingRestartLR`` (:func:`cosine_restart_factor`; with its
    ``eta_min``, :meth:`LrSchedule.lr_at` gives the rate); ``multistep``: ``gamma`` per milestone passed;
    ``constant``: 1. A linear warm-up from ``warmup_factor`` to 1 over ``warmup`` steps multiplies any of them
    (Detectron2's form, used by ECO).
    """
    if cfg.name == "cosine":
        f = 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    elif cfg.name == "cosine_restart":
        f = cosine_restart_factor(step, cfg.periods, cfg.restart_weights)
    elif cfg.name == "multistep":
        f = cfg.gamma ** bisect_right(sorted(cfg.milestones), step)
    elif cfg.name == "constant":
        f = 1.0
    else:
        raise SrprepError(f"schedule.name: unknown schedule {cfg.name!r}; choose cosine, cosine_restart, "
                          f"multistep or constant")
    if cfg.warmup > 0 and step < cfg.warmup:
        a = step / cfg.warmup
        f *= cfg.warmup_factor * (1.0 - a) + a
    return f


def cosine_restart_factor(step: int, periods, restart_weights=()) -> float:
    """BasicSR's ``CosineAnnealingRestartLR`` at ``step`` (0-based) as a factor of ``base - eta_min``.

    Cosine ``i`` runs over ``periods[i]`` steps from ``restart_weights[i]`` (default 1) to 0; step ``t`` belongs
    to the first cosine whose cumulative end is ``>= t``, so the step that ends one cosine is its minimum and
    the next step restarts. Past the last period the factor stays 0 (BasicSR stops with an error there).
    BasicSR steps its scheduler before each iteration but the first, so its iteration ``t + 1`` runs at this
    step ``t``'s rate: ``eta_min + factor * (base - eta_min)``.
    """
    weights = list(restart_weights) or [1.0] * len(periods)
    end = 0
    for i, period in enumerate(periods):
        start, end = end, end + period
        if step <= end or i == len(periods) - 1:
            return weights[i] * 0.5 * (1.0 + math.cos(math.pi * min(step - start, period) / period))
    raise ValueError("cosine_restart needs at least one period")


class LrSchedule:
    """Sets every param group's learning rate from the step (a pure function of it, so resuming is exact)."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg, total: int):
        self.optimizer, self.cfg, self.total = optimizer, cfg, total
        self.base_lrs = [g.setdefault("initial_lr", g["lr"]) for g in optimizer.param_groups]

    def lr_at(self, step: int, base: float) -> float:
        f = lr_factor(step, self.total, self.cfg)
        if self.cfg.name == "cosine" and self.cfg.min_lr > 0:
            return max(self.cfg.min_lr, base * f)
        if self.cfg.name == "cosine_restart":  # BasicSR: eta_min + w 0.5 (base - eta_min)(1 + cos)
            return self.cfg.min_lr + f * (base - self.cfg.min_lr)
        return base * f

    def apply(self, step: int) -> float:
        """Set the rates for ``step``; returns the first group's."""
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = self.lr_at(step, base)
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"base_lrs": list(self.base_lrs), "total": self.total}

    def load_state_dict(self, state: dict) -> None:
        self.base_lrs = [float(v) for v in state["base_lrs"]]


class ModelEma:
    """Exponential moving average of a network's weights: ``ema = decay * ema + (1 - decay) * w``.

    Before ``start`` the EMA copies the weights (ECO starts averaging at 5k steps of 125k). Buffers are
    copied. Updates are ``torch._foreach`` ops: no host sync.
    """

    def __init__(self, model: nn.Module, decay: float, start: int = 0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay, self.start = decay, start
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        ema_params = list(self.module.parameters())
        params = [p.detach() for p in model.parameters()]
        if step < self.start:
            torch._foreach_copy_(ema_params, params)
        else:
            torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)


def clip_gradients(params: list[nn.Parameter], mode: str, value: float) -> Optional[torch.Tensor]:
    """Clip gradients in place: ``norm`` (total L2 norm <= value) or ``value`` (each element in [-v, v]).

    Returns the total norm before clipping (a device tensor) for ``norm``, else None. No host sync.
    """
    if value <= 0:
        return None
    grads = [p for p in params if p.grad is not None]
    if mode == "norm":
        return torch.nn.utils.clip_grad_norm_(grads, value, foreach=True)
    if mode == "value":
        torch.nn.utils.clip_grad_value_(grads, value, foreach=True)
        return None
    raise SrprepError(f"train.grad_clip_mode must be norm or value, not {mode!r}")
