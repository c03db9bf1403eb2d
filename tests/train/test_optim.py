"""Optimisers, schedules, EMA, and the device-side skip of a step."""
import math

import pytest
import torch

from srprep.train.config import ConfigError, OptimConfig, ScheduleConfig, load_config
from srprep.train.optim import Lamb, LrSchedule, ModelEma, build_optimizer, clip_gradients, lr_factor


def quadratic_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 1))


def one_step(model, opt, x, found_inf=None):
    opt.zero_grad()
    model(x).square().mean().backward()
    if found_inf is not None:
        opt.found_inf = found_inf
    opt.step()


def test_lamb_step_matches_the_definition():
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = Lamb([w], lr=0.1, betas=(0.9, 0.99), eps=1e-6)
    w.grad = torch.tensor([1.0, -2.0])
    opt.step()
    m = 0.1 * torch.tensor([1.0, -2.0])
    v = 0.01 * torch.tensor([1.0, 4.0])
    u = m / (v.sqrt() + 1e-6)
    trust = 5.0 / u.norm()  # ||w|| = 5 (< clamp 10)
    assert torch.allclose(w.detach(), torch.tensor([3.0, 4.0]) - 0.1 * trust * u, atol=1e-6)


@pytest.mark.parametrize("name", ["adam", "adamw", "lamb"])
def test_found_inf_skips_the_update_entirely(name):
    model = quadratic_model()
    opt = build_optimizer(model.parameters(), OptimConfig(name=name, lr=1e-2), torch.device("cpu"))
    x = torch.randn(16, 8)
    one_step(model, opt, x)
    before = [p.detach().clone() for p in model.parameters()]
    state_before = {k: v.clone() for k, v in opt.state[next(model.parameters())].items()}
    one_step(model, opt, x, found_inf=torch.tensor(1.0))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    for k, v in opt.state[next(model.parameters())].items():
        assert torch.equal(v, state_before[k]), k
    one_step(model, opt, x, found_inf=torch.tensor(0.0))
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_schedules():
    cos = ScheduleConfig(name="cosine")
    assert lr_factor(0, 100, cos) == 1.0 and lr_factor(50, 100, cos) == pytest.approx(0.5)
    assert lr_factor(100, 100, cos) == pytest.approx(0.0, abs=1e-12)
    steps = ScheduleConfig(name="multistep", milestones=[10, 20], gamma=0.5)
    assert [lr_factor(s, 30, steps) for s in (0, 9, 10, 19, 20, 29)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    warm = ScheduleConfig(name="constant", warmup=10, warmup_factor=0.0)
    assert [lr_factor(s, 30, warm) for s in (0, 5, 10)] == [0.0, 0.5, 1.0]
    model = quadratic_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    sched = LrSchedule(opt, ScheduleConfig(name="cosine", min_lr=0.05), 100)
    assert sched.apply(0) == 0.2 and sched.apply(100) == 0.05 and sched.apply(50) == pytest.approx(0.1)


def test_ema_copies_before_start_then_averages():
    model = quadratic_model()
    ema = ModelEma(model, decay=0.9, start=2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model, step=0)
    assert all(torch.equal(a, b) for a, b in zip(ema.module.parameters(), model.parameters()))
    old = [p.clone() for p in ema.module.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model, step=2)
    for e, o, p in zip(ema.module.parameters(), old, model.parameters()):
        assert torch.allclose(e, 0.9 * o + 0.1 * p)


def test_gradient_clipping_modes():
    model = quadratic_model()
    model(torch.randn(4, 8) * 100).square().mean().backward()
    params = list(model.parameters())
    norm = clip_gradients(params, "norm", 1.0)
    assert norm > 1.0
    assert math.isclose(float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in params]))), 1.0,
                        rel_tol=1e-4)
    clip_gradients(params, "value", 0.01)
    assert max(float(p.grad.abs().max()) for p in params) <= 0.01


def basicsr_cosine_restart_lrs(base, periods, weights, eta_min, iters):
    """BasicSR's CosineAnnealingRestartLR driven as its train.py drives it: ``update_learning_rate`` calls
    ``scheduler.step()`` before every iteration but the first, and the rate is the closed form at
    ``last_epoch``. Returns the rate of iterations 1..iters."""
    cumulative = [sum(periods[:i + 1]) for i in range(len(periods))]

    def get_lr(last_epoch):
        idx = next(i for i, end in enumerate(cumulative) if last_epoch <= end)
        nearest_restart = 0 if idx == 0 else cumulative[idx - 1]
        return eta_min + weights[idx] * 0.5 * (base - eta_min) * (
            1 + math.cos(math.pi * ((last_epoch - nearest_restart) / periods[idx])))

    last_epoch, rates = 0, []
    for current_iter in range(1, iters + 1):
        if current_iter > 1:
            last_epoch += 1
        rates.append(get_lr(last_epoch))
    return rates


@pytest.mark.parametrize("periods, weights, eta_min", [([25, 25, 25, 25], [1, 1, 1, 1], 1e-7),  # MSRResNet x4
                                                        ([25, 50], [1, 1], 0.0),  # Reflash's Real-SRResNet
                                                        ([10, 20, 30], [1, 0.5, 0.25], 1e-5)])
def test_cosine_restart_is_basicsrs(periods, weights, eta_min):
    iters = min(sum(periods), 50) if periods == [25, 50] else sum(periods)
    cfg = ScheduleConfig(name="cosine_restart", periods=periods, restart_weights=weights, min_lr=eta_min)
    opt = torch.optim.SGD(quadratic_model().parameters(), lr=2e-4)
    sched = LrSchedule(opt, cfg, iters)
    ours = [sched.apply(step) for step in range(iters)]
    assert ours == pytest.approx(basicsr_cosine_restart_lrs(2e-4, periods, weights, eta_min, iters), rel=1e-12,
                                 abs=1e-18)
    assert sched.apply(periods[0]) == pytest.approx(eta_min, abs=1e-15)  # the end of the first cosine ...
    assert sched.apply(periods[0] + 1) > 0.99 * weights[1] * 2e-4  # ... then the restart
    assert sched.apply(10 * sum(periods)) == pytest.approx(eta_min, abs=1e-15)  # past the end: the floor


def test_cosine_restart_options_are_checked():
    with pytest.raises(ConfigError, match="schedule.periods"):
        load_config(None, ["schedule.name=cosine_restart"])
    with pytest.raises(ConfigError, match="schedule.restart_weights"):
        load_config(None, ["schedule.name=cosine_restart", "schedule.periods=[10, 10]",
                           "schedule.restart_weights=[1]"])
