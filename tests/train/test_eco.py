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
