"""ECO's centroid weight: the authors' sigmoid schedule as a formula, the README's linear one, the plot."""
import math

import numpy as np
import pytest
import torch

from srprep.train.eco import eco_alpha, eco_mix, eco_schedule_plot


def reference(p: float, shift: float = 0.0) -> float:
    s = 1 / (1 + math.exp(-(10 * (p - 0.5) - shift)))
    return 1 - (min(max(1.2 * (s - 0.5), -0.5), 0.5) + 0.5)


def test_sigmoid_schedule_equals_the_formula():
    total = 1000
    for step in range(0, total + 1, 7):
        assert eco_alpha(step, total) == pytest.approx(reference(step / total), abs=1e-12)
    for shift in (-2.0, 1.0):
        assert eco_alpha(300, total, shift=shift) == pytest.approx(reference(0.3, shift), abs=1e-12)


def test_sigmoid_schedule_landmarks():
    total = 100_000
    edge = 0.5 - math.log(11) / 10  # where 1.2 (sigmoid - 0.5) reaches -0.5: p = 0.2602
    assert eco_alpha(0, total) == 1.0
    assert eco_alpha(int(edge * total) - 1, total) == 1.0  # exactly 1 up to p ~ 0.26
    assert eco_alpha(int(edge * total) + 100, total) < 1.0
    assert eco_alpha(total // 2, total) == 0.5
    assert eco_alpha(int((1 - edge) * total) + 1, total) == 0.0  # exactly 0 after p ~ 0.74
    assert eco_alpha(int((1 - edge) * total) - 100, total) > 0.0
    assert eco_alpha(total, total) == 0.0 and eco_alpha(2 * total, total) == 0.0
    values = [eco_alpha(s, total) for s in range(0, total, 1000)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # never increases


def test_linear_schedule_and_errors():
    assert [eco_alpha(s, 4, "linear") for s in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    with pytest.raises(ValueError, match="schedule"):
        eco_alpha(0, 10, "cosine")
    with pytest.raises(ValueError, match="total"):
        eco_alpha(0, 0)


def test_mix_weights_the_centroid_by_alpha():
    a, c = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    assert torch.equal(eco_mix(a, c, 1.0), c) and torch.equal(eco_mix(a, c, 0.0), a)
    assert torch.allclose(eco_mix(a, c, 0.25), torch.full_like(a, 0.25))
    with pytest.raises(ValueError, match="equal shapes"):
        eco_mix(a, c[..., :2], 0.5)


def test_schedule_plot_is_an_rgb_image():
    img = eco_schedule_plot(mark=0.5, size=(320, 200))
    assert img.shape == (200, 320, 3) and img.dtype == np.uint8
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 10  # lines and text, not a blank canvas


# --- pinned to the authors' code (2minkyulee/Noise-free-Optimization-in-Early-Training-Steps-for-Image-Super-
# Resolution, ECO/): their schedule, their pairing and their Lamb, restated step by step in their own order.

def authors_mixup_alpha(curr_iter: int, max_iter: int, mixup_shift: float) -> float:
    """trainer.py ``_update_mixup_alpha``: the centroid weight the dataset uses at ``curr_iter``."""
    a = curr_iter / max_iter
    a = 10 * (a - 0.5)  # convert 0~1 to -5~5
    x = a - mixup_shift  # _sigmoid(x, x_axis_shift)
    x = float(1 / (1 + np.exp(-1 * x)))
    x = 1.2 * (x - 0.5)
    x = max(x, -0.5)
    x = min(x, 0.5)
    x = x + 0.5
    return 1 - x  # invert 0~1 to 1~0


def authors_pair(lr_centroid, hr_centroid, lr, hr, a):
    """syntheticSR_dataset_preprocessed.py ``__getitem__``: image_HR/LR are the centroids (the pretrained
    network's outputs), image_HR2/LR2 the originals; one weight for both, then clamp."""
    return (a * lr_centroid + (1 - a) * lr).clamp(0, 1), (a * hr_centroid + (1 - a) * hr).clamp(0, 1)


def test_schedule_is_the_authors():
    total = 125_000  # their max_iter for EDSR at batch_scale 8
    for shift in (0.0, -2.0, 1.5):
        for step in range(0, total + 1, 997):
            assert eco_alpha(step, total, "sigmoid", shift) == pytest.approx(
                authors_mixup_alpha(step, total, shift), abs=1e-15), (shift, step)


def test_pairing_is_the_authors(kodak_eco):
    """Centroid LR with original LR and centroid HR with original HR, one alpha for both, as their dataset."""
    from pathlib import Path

    from srprep.train import load_config
    from srprep.train.augment import dihedral
    from srprep.train.data import build_dataset, make_loader, nchw
    from srprep.train.loop import _inputs

    tiny = Path(__file__).resolve().parents[2] / "srprep" / "configs" / "tiny_cpu.yaml"
    cfg = load_config(tiny, [f"data.root={kodak_eco}", "eco.enabled=true", "data.patch=32", "train.iters=1000",
                             "train.cpu_threads=1", "train.tensorboard=false"])
    batch = next(iter(make_loader(build_dataset(cfg), batch=4, start_step=0)))
    gen = torch.Generator()
    for step in (300, 500, 650):
        lr, hr, alpha = _inputs(batch, cfg, step, gen, gen, torch.device("cpu"), torch.contiguous_format)
        assert alpha == pytest.approx(authors_mixup_alpha(step, 1000, 0.0), abs=1e-15) and 0 < alpha < 1
        f = batch["flags"]
        unit = {k: dihedral(nchw(batch[k]), f).float() / 255 for k in ("lr", "hr", "lr_c", "hr_c")}
        want_lr, want_hr = authors_pair(unit["lr_c"], unit["hr_c"], unit["lr"], unit["hr"], alpha)
        assert torch.allclose(lr, want_lr, atol=1e-6) and torch.allclose(hr, want_hr, atol=1e-6)


def authors_lamb_step(p, grad, state, lr, betas, eps=1e-6, weight_decay=0.0, clamp_value=10.0):
    """optimizer_utils.py ``Lamb.step`` for one tensor (their defaults: eps 1e-6, clamp 10, no debias)."""
    if not state:
        state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    beta1, beta2 = betas
    state["step"] += 1
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    step_size = lr * 1  # bias_correction = 1 without debias
    weight_norm = torch.norm(p).clamp(0, clamp_value)
    adam_step = exp_avg / exp_avg_sq.sqrt().add(eps)
    if weight_decay != 0:
        adam_step.add_(p, alpha=weight_decay)
    adam_norm = torch.norm(adam_step)
    trust_ratio = 1 if weight_norm == 0 or adam_norm == 0 else weight_norm / adam_norm
    p.add_(adam_step, alpha=float(-step_size * trust_ratio))


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_lamb_is_the_authors(weight_decay):
    from srprep.train.optim import Lamb

    g = torch.Generator().manual_seed(0)
    # a small tensor, one whose norm exceeds the clamp (10) and one that starts at zero (trust ratio 1)
    init = [torch.randn(3, 4, generator=g) * 0.1, torch.randn(64, generator=g) * 3.0, torch.zeros(5)]
    ours = [torch.nn.Parameter(t.clone()) for t in init]
    theirs = [t.clone() for t in init]
    states = [{} for _ in init]
    # the ECO config's optimiser: lamb, lr 1e-4 x batch_scale 8, betas (0.9, 0.99), their default eps 1e-6
    opt = Lamb(ours, lr=8e-4, betas=(0.9, 0.99), eps=1e-6, weight_decay=weight_decay)
    for _ in range(6):
        grads = [torch.randn(t.shape, generator=g) for t in init]
        for p, gr in zip(ours, grads):
            p.grad = gr.clone()
        opt.step()
        for p, gr, st in zip(theirs, grads, states):
            authors_lamb_step(p, gr, st, 8e-4, (0.9, 0.99), weight_decay=weight_decay)
    for a, b in zip(ours, theirs):
        assert torch.allclose(a.detach(), b, rtol=1e-5, atol=1e-7)
    assert torch.norm(init[1]) > 10  # the clamp was exercised


def test_the_eco_config_is_the_authors():
    """configs/edsr_x2_eco.yaml against _largerbatch_EDSR_S_x2_ecoo2_mixup_lrx2_configs.py."""
    from pathlib import Path

    from srprep.train import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "srprep" / "configs" / "edsr_x2_eco.yaml")
    assert (cfg.eco.schedule, cfg.eco.shift, cfg.eco.iters) == ("sigmoid", 0.0, None)  # mixup_shift 0
    assert cfg.train.iters == 1_000_000 // 8  # max_iter
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.betas, cfg.optim.eps) == ("lamb", 1e-4 * 8, [0.9, 0.99], 1e-6)
    # StepLR(step_size=200000 // 8, gamma=0.5)
    assert (cfg.schedule.name, cfg.schedule.milestones, cfg.schedule.gamma) == (
        "multistep", [25_000, 50_000, 75_000, 100_000], 0.5)
    assert (cfg.data.patch, cfg.data.batch) == (96, 16 * 8)
    assert [(t.type, t.weight) for t in cfg.loss] == [("l1", 255.0)]  # "1*L1x255"
