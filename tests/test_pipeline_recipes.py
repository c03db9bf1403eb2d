"""Multi-stage training recipes as pipelines, on tiny data and a few steps: EDSR's x2 -> x3/x4 and the AIM2020
AiAiR stages. Each stage starts from the weights of the one before (recorded by SHA-256); a changed stage
reruns itself and what follows, nothing before it."""
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from srprep.cli import main
from srprep.io.images import read_image, write_image
from srprep.models import create_model, load_pretrained
from srprep.models.pretrained import file_sha256
from srprep.ops.imresize import imresize_matlab
from srprep.train import load_config

REPO = Path(__file__).resolve().parents[1]
EDSR_PIPE = REPO / "srprep" / "pipelines" / "edsr_baseline_x2_x3_x4.yaml"
AIM_PIPE = REPO / "srprep" / "pipelines" / "aim2020_x2_washed_large.yaml"


def tiny_config(src: Path, dst: Path, **train) -> Path:
    """The recipe's config with a one-block EDSR, in-process data reading and quiet logs."""
    cfg = yaml.safe_load(src.read_text())
    cfg["model"]["kwargs"] = {"num_blocks": 1, "num_feats": 16}
    cfg["data"].update(workers=0, cache=True, batch=2)
    cfg["val"]["crops"] = 1
    cfg["train"].update(device="cpu", log_every=1, cpu_threads=1, tensorboard=False, **train)
    dst.write_text(yaml.safe_dump(cfg))
    return dst


def run(capsys, pipe, wd, *sets):
    code = main(["run", str(pipe), "--workdir", str(wd), *[a for s in sets for a in ("--set", s)]])
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\[(\w+)\] (done|up to date)", out.out, re.M)}


def stage_args(pipe: Path, step: str, *extra: str) -> str:
    """--set STEP.args=[...]: the step's own arguments plus ``extra``."""
    args = yaml.safe_load(pipe.read_text())["steps"][step]["args"]
    return f"{step}.args={json.dumps(args + list(extra))}"


def recorded(run_dir: Path):
    return load_config(run_dir / "config.yaml").model


@pytest.mark.slow
def test_edsr_x3_and_x4_start_from_x2(samples, ref_data, tmp_path, capsys):
    config = tiny_config(REPO / "srprep" / "configs" / "edsr_baseline_official.yaml", tmp_path / "edsr.yaml")
    wd = tmp_path / "wd"
    sets = [f"vars.div2k_hr={samples / 'kodak'}", f"vars.benchmark={ref_data / 'benchmark'}",
            f"vars.config={config}", "vars.iters=2", "vars.device=cpu",
            # x2 learns (lr 1e-3); x3 and x4 do not move (lr 0), so their weights are those they started from
            stage_args(EDSR_PIPE, "x2", "optim.lr=1.0e-3"), stage_args(EDSR_PIPE, "x3", "optim.lr=0"),
            stage_args(EDSR_PIPE, "x4", "optim.lr=0")]
    steps = ["data", "pack", "x2", "x3", "x4", "eval_x2", "eval_x3", "eval_x4"]
    assert run(capsys, EDSR_PIPE, wd, *sets) == dict.fromkeys(steps, "done")

    x2 = load_pretrained(wd / "x2" / "best.pt")[0].state_dict()
    for scale, fresh_keys in ((3, {"tail.0.0.weight", "tail.0.0.bias"}), (4, {"tail.0.2.weight", "tail.0.2.bias"})):
        m = recorded(wd / f"x{scale}")
        assert (m.name, m.scale, m.strict) == ("edsr_baseline", scale, False)
        assert m.pretrained_sha256 == file_sha256(wd / "x2" / "best.pt")
        torch.manual_seed(0)  # the trainer's initialisation (train.seed 0)
        fresh = create_model("edsr_baseline", scale=scale, **m.kwargs).state_dict()
        tuned = load_pretrained(wd / f"x{scale}" / "last.pt")[0].state_dict()
        for key, value in tuned.items():
            assert torch.equal(value, fresh[key] if key in fresh_keys else x2[key]), (scale, key)
        assert not torch.equal(tuned["head.0.weight"], fresh["head.0.weight"])  # x2 moved away from the init
    assert (wd / "eval_x4.csv").read_text().startswith("dataset,scale,image,psnr")

    assert set(run(capsys, EDSR_PIPE, wd, *sets).values()) == {"up to date"}
    changed_x4 = [s if not s.startswith("x4.") else stage_args(EDSR_PIPE, "x4", "optim.lr=0", "train.log_every=2")
                  for s in sets]
    assert run(capsys, EDSR_PIPE, wd, *changed_x4) == {
        **dict.fromkeys(["data", "pack", "x2", "x3", "eval_x2", "eval_x3"], "up to date"), "x4": "done",
        "eval_x4": "done"}
    changed_x2 = [s if not s.startswith("x2.") else stage_args(EDSR_PIPE, "x2", "optim.lr=1.0e-3", "train.seed=1")
                  for s in changed_x4]
    assert run(capsys, EDSR_PIPE, wd, *changed_x2) == {
        **dict.fromkeys(["data", "pack"], "up to date"), **dict.fromkeys(steps[2:], "done")}
    assert recorded(wd / "x3").pretrained_sha256 == file_sha256(wd / "x2" / "best.pt")


def fake_aim(samples: Path, root: Path) -> Path:
    """AIM2020's layout from the Kodak crops (MATLAB bicubic LR): X2 and X3 pairs, X2/valid, clean-ID lists."""
    images = sorted((samples / "kodak").glob("*.png"))
    for scale in (2, 3):
        for i, path in enumerate(images):
            if i >= 6 and scale == 3:
                break
            hr = read_image(path)
            hr = hr[:hr.shape[0] // scale * scale, :hr.shape[1] // scale * scale]
            folder = root / f"X{scale}" / ("valid" if i >= 6 else "")
            for field, img in (("HR", hr), ("LR", imresize_matlab(hr, 1 / scale))):
                (folder / field).mkdir(parents=True, exist_ok=True)
                write_image(folder / field / f"{i:06d}.png", img)
    (root / "x2_clean.txt").write_text("000000.png\n000002.png\n000003.png\n000004.png\n000005.png\n")
    (root / "x3_clean.txt").write_text("000001.png\n000002.png\n000004.png\n000005.png\n")
    return root


@pytest.mark.slow
def test_aim2020_stages_feed_each_other(samples, ref_data, tmp_path, capsys):
    aim = fake_aim(samples, tmp_path / "AIM2020")
    config = tiny_config(REPO / "srprep" / "configs" / "aim2020_x2.yaml", tmp_path / "aim.yaml")
    wd = tmp_path / "wd"
    sets = [f"vars.div2k_hr={samples / 'kodak'}", f"vars.benchmark={ref_data / 'benchmark'}",
            f"vars.aim={aim}", f"vars.ids_x2={aim / 'x2_clean.txt'}", f"vars.ids_x3={aim / 'x3_clean.txt'}",
            f"vars.config={config}", "vars.network=edsr", "vars.device=cpu", "vars.pretrain_iters=2",
            "vars.aim_iters=2", "vars.large_iters=2", "vars.ssim_iters=2"]
    data_steps = ["div2k", "div2k_pack", "check", "wash_x2", "wash_x3", "large", "pack_x2", "pack_large"]
    stages = ["pretrain", "aim_x2", "large_l1", "ssim"]
    assert run(capsys, AIM_PIPE, wd, *sets) == dict.fromkeys(data_steps + stages, "done")

    assert recorded(wd / "pretrain").pretrained is None
    for stage, source in (("aim_x2", "pretrain/best.pt"), ("large_l1", "aim_x2/last.pt"), ("ssim", "large_l1/last.pt")):
        m = recorded(wd / stage)
        assert m.pretrained == str(wd / source) and m.pretrained_sha256 == file_sha256(wd / source), stage
    ssim = load_config(wd / "ssim" / "config.yaml")
    assert [(t.type, t.weight) for t in ssim.loss] == [("ssim", 20.0)]
    assert (ssim.optim.lr, ssim.data.patch, ssim.data.batch, ssim.data.lr) == (1e-5, 400, 4, "LR")
    assert load_config(wd / "aim_x2" / "config.yaml").optim.lr == 5e-5

    # a longer L1 fine-tuning: it and the SSIM stage after it rerun, nothing before them
    assert run(capsys, AIM_PIPE, wd, *sets, "vars.large_iters=3") == {
        **dict.fromkeys(data_steps + stages[:2], "up to date"), "large_l1": "done", "ssim": "done"}
    assert recorded(wd / "ssim").pretrained_sha256 == file_sha256(wd / "large_l1" / "last.pt")
