"""TensorBoard events beside the CSV logs: per-term losses, lr, ECO alpha, validation PSNR/SSIM and crops, read
back from the event file; without the package the run says once that it is off."""
import logging
import sys
from pathlib import Path

import pytest

from srprep.train import load_config, train
from srprep.train.logs import read_csv

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "srprep" / "configs" / "tiny_cpu.yaml"


def _config(root, *extra):
    return load_config(TINY, [f"data.root={root}", "train.iters=4", "val.every=2", "train.log_every=2",
                              "train.cpu_threads=1", "train.tensorboard=true", *extra])


def test_events_hold_every_logged_value(kodak_eco, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    train(_config(kodak_eco, "eco.enabled=true", "loss=[{type: l1, weight: 255}, {type: ssim, weight: 20}]"), run)
    events = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/loss/l1", "train/loss/ssim", "train/lr", "train/eco_alpha", "val/psnr",
            "val/ssim"} <= set(tags["scalars"])
    assert tags["images"] == ["val/crops"]

    def series(tag):
        return [(e.step, e.value) for e in events.Scalars(tag)]

    rows, val = read_csv(run / "train.csv"), read_csv(run / "val.csv")
    assert [s for s, _ in series("train/loss")] == [r["step"] for r in rows] == [2, 4]
    for tag, column in (("train/loss", "loss"), ("train/lr", "lr"), ("train/eco_alpha", "eco_alpha")):
        assert [v for _, v in series(tag)] == pytest.approx([r[column] for r in rows], rel=1e-5), tag
    # the terms are the weighted parts of the loss
    parts = [a + b for (_, a), (_, b) in zip(series("train/loss/l1"), series("train/loss/ssim"))]
    assert parts == pytest.approx([v for _, v in series("train/loss")], rel=1e-5)
    for tag, column in (("val/psnr", "psnr"), ("val/ssim", "ssim")):
        assert [s for s, _ in series(tag)] == [r["step"] for r in val] == [2, 4]
        assert [v for _, v in series(tag)] == pytest.approx([r[column] for r in val], rel=1e-5), tag
    images = events.Images("val/crops")
    assert [im.step for im in images] == [2, 4] and images[-1].width > 100


def test_without_the_package_the_run_says_once_that_it_is_off(kodak_x2, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    with caplog.at_level(logging.INFO, logger="srprep"):
        result = train(_config(kodak_x2), tmp_path / "run")
    assert result.steps == 4
    said = [r.getMessage() for r in caplog.records if "TensorBoard" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("TensorBoard logging is off")
    assert not (tmp_path / "run" / "tb").exists()
    assert len(read_csv(tmp_path / "run" / "train.csv")) == 2
