"""Pipelines: step caching, downstream reruns, resume, bad files, the shipped pipelines."""
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from srprep.cli import main
from srprep.pipeline import PipelineError, load_pipeline

REPO = Path(__file__).resolve().parents[1]

CHAIN = {
    "name": "chain",
    "vars": {"images": "{srprep_samples}/set5"},
    "steps": {
        "lr": {"command": "downsample", "args": ["{images}", "{out}"], "options": {"scale": [2], "jobs": 1}},
        "crop": {"command": "modcrop", "args": ["{lr}/X2", "{out}"], "options": {"scale": 4, "jobs": 1}},
        "lr2": {"command": "downsample", "args": ["{crop}", "{out}"],
                "options": {"scale": [2], "hr": False, "jobs": 1}},
    },
}


def write(tmp_path, spec, name="p.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def run(capsys, *args, commands=None):
    """``srprep run ARGS``: {step: "done" | "up to date"}. ``commands``: how many step commands it must have
    started (an up-to-date step is skipped without starting its command)."""
    code = main(["run", *map(str, args)])
    out = capsys.readouterr()
    assert code == 0, out.err
    if commands is not None:
        assert len(re.findall(r"^\$ srprep ", out.out, re.M)) == commands, out.out
    return {m.group(1): m.group(2) for m in re.finditer(r"^\[(\w+)\] (done|up to date)", out.out, re.M)}


def test_steps_are_cached_and_a_change_reruns_exactly_the_downstream(tmp_path, capsys):
    p = write(tmp_path, CHAIN)
    wd = tmp_path / "wd"
    assert run(capsys, p, "--workdir", wd, commands=3) == {"lr": "done", "crop": "done", "lr2": "done"}
    assert len(list((wd / "lr2/X2").glob("*.png"))) == 5
    assert run(capsys, p, "--workdir", wd, commands=0) == {
        "lr": "up to date", "crop": "up to date", "lr2": "up to date"}
    assert run(capsys, p, "--workdir", wd, "--set", "crop.scale=2") == {
        "lr": "up to date", "crop": "done", "lr2": "done"}
    assert run(capsys, p, "--workdir", wd, "--set", "lr2.scale=[4]", "--set", "crop.scale=2") == {
        "lr": "up to date", "crop": "up to date", "lr2": "done"}


def test_replace_removes_a_finished_output_but_resumes_an_unfinished_one(tmp_path, capsys):
    spec = yaml.safe_load(yaml.safe_dump(CHAIN))
    spec["steps"]["crop"]["replace"] = True
    p = write(tmp_path, spec)
    wd = tmp_path / "wd"
    assert run(capsys, p, "--workdir", wd, "--until", "crop") == {"lr": "done", "crop": "done"}
    stale = wd / "crop" / "stale.txt"  # not an output of the step: only a replaced folder loses it
    stale.write_text("x")
    assert run(capsys, p, "--workdir", wd, "--until", "crop", "--set", "crop.scale=2") == {
        "lr": "up to date", "crop": "done"}
    assert not stale.exists() and len(list((wd / "crop").glob("*.png"))) == 5
    # the step's last run did not finish: its output is kept so that the step resumes
    state_file = next((wd / ".srprep-pipeline").glob("*.json"))
    state = json.loads(state_file.read_text())
    state["steps"]["crop"]["ok"] = False
    state_file.write_text(json.dumps(state))
    stale.write_text("x")
    assert run(capsys, p, "--workdir", wd, "--until", "crop", "--set", "crop.scale=2") == {
        "lr": "up to date", "crop": "done"}
    assert stale.exists()


def test_dry_run_until_only_and_force(tmp_path, capsys):
    p = write(tmp_path, CHAIN)
    wd = tmp_path / "wd"
    assert main(["run", str(p), "--workdir", str(wd), "--dry-run"]) == 0
    assert "3 would run" in capsys.readouterr().out and not wd.exists()
    assert run(capsys, p, "--workdir", wd, "--until", "crop") == {"lr": "done", "crop": "done"}
    assert not (wd / "lr2").exists()
    assert main(["run", str(p), "--workdir", str(wd), "--only", "lr2"]) == 0
    capsys.readouterr()
    assert run(capsys, p, "--workdir", wd, "--force", "crop") == {"lr": "up to date", "crop": "done", "lr2": "done"}


def test_a_failed_step_resumes_from_there(tmp_path, capsys):
    spec = yaml.safe_load(yaml.safe_dump(CHAIN))
    spec["steps"]["crop"]["args"][0] = "{lr}/X3"  # does not exist: the step fails
    p = write(tmp_path, spec)
    wd = tmp_path / "wd"
    assert main(["run", str(p), "--workdir", str(wd)]) != 0
    err = capsys.readouterr().err
    assert "X3" in err
    spec["steps"]["crop"]["args"][0] = "{lr}/X2"
    write(tmp_path, spec)
    assert run(capsys, p, "--workdir", wd) == {"lr": "up to date", "crop": "done", "lr2": "done"}


def test_killed_pipeline_resumes(tmp_path, capsys, kill_when):
    spec = yaml.safe_load(yaml.safe_dump(CHAIN))
    spec["vars"]["images"] = "{srprep_samples}/kodak"
    p = write(tmp_path, spec)
    wd = tmp_path / "wd"
    # killed in the middle of the crop step, after its first item
    assert kill_when([sys.executable, "-m", "srprep", "-q", "run", p, "--workdir", wd], wd / "crop", "*.png", 1,
                     step="modcrop", cwd=REPO) == 1
    steps = run(capsys, p, "--workdir", wd)
    assert steps["lr"] == "up to date" and steps["crop"] == "done" and steps["lr2"] == "done"
    assert len(list((wd / "lr2/X2").glob("*.png"))) == 8


@pytest.mark.parametrize("change, message", [
    (lambda s: s["steps"]["lr"]["args"].append("{lr2}"), "steps form a cycle: crop -> lr -> lr2 -> crop"),
    (lambda s: s["steps"]["crop"]["args"].append("{nowhere}"), "unknown step or variable {nowhere}"),
    (lambda s: s["steps"]["crop"].update(bogus=1), "unknown keys ['bogus']"),
    (lambda s: s["steps"]["crop"].pop("command"), "needs a 'command'"),
])
def test_bad_pipelines_are_refused(tmp_path, change, message):
    spec = yaml.safe_load(yaml.safe_dump(CHAIN))
    change(spec)
    with pytest.raises(PipelineError) as info:
        load_pipeline(write(tmp_path, spec))
    assert message in str(info.value)


def test_graph_text_and_png(tmp_path, capsys):
    p = write(tmp_path, CHAIN)
    assert main(["run", str(p), "--graph", "--graph-png", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    assert "crop [modcrop] <- lr" in out and "lr2 [downsample] <- crop" in out
    from srprep.io.images import read_image
    assert read_image(tmp_path / "g.png").shape[0] > 100


@pytest.mark.parametrize("path", sorted((REPO / "srprep/pipelines").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_pipelines_resolve_to_real_commands(path, tmp_path, capsys):
    assert main(["run", str(path), "--graph", "--graph-png", str(tmp_path / "g.png")]) == 0
    assert "steps ->" in capsys.readouterr().out


def test_quickstart_runs_end_to_end_is_cached_and_reported(tmp_path, capsys):
    """The README's main job: downsample -> teacher -> centroids -> pack -> ECO training -> eval."""
    wd = tmp_path / "qs"
    steps = run(capsys, "quickstart", "--workdir", wd)
    assert steps == dict.fromkeys(["data", "set5", "teacher", "centroids", "pack", "eco", "eval"], "done")
    rows = (wd / "eval_set5.csv").read_text().splitlines()
    assert rows[0].startswith("dataset,scale,image,psnr") and len(rows) >= 6
    val = (wd / "eco/val.csv").read_text().splitlines()[-1].split(",")
    assert float(val[1]) > float(val[3]), "the ECO-trained network must beat bicubic on held-out images"
    assert set(run(capsys, "quickstart", "--workdir", wd, commands=0).values()) == {
        "up to date"}
    assert run(capsys, "quickstart", "--workdir", wd, "--set", "vars.eco_iters=120") == {
        **dict.fromkeys(["data", "set5", "teacher", "centroids", "pack"], "up to date"), "eco": "done",
        "eval": "done"}
    assert main(["report", str(wd)]) == 0
    page = (wd / "report.md").read_text()
    assert "| teacher | train | ok |" in page and "![curves.png](eco/curves.png)" in page
    assert "| set5 | 2 | baby |" in page
