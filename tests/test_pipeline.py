"""Pipelines: step caching, downstream reruns, resume, bad files, the shipped pipelines."""
import json
import os
import re
import signal
import subprocess
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
    assert main(["run", str(p), "--workdir", str(wd), "--set", "crop.scale=2", "--dry-run"]) == 0
    assert "[crop] would run (--scale 4 -> 2)" in capsys.readouterr().out  # says which option changed
    assert run(capsys, p, "--workdir", wd, "--set", "crop.scale=2") == {
        "lr": "up to date", "crop": "done", "lr2": "done"}
    assert run(capsys, p, "--workdir", wd, "--set", "lr2.scale=[4]", "--set", "crop.scale=2") == {
        "lr": "up to date", "crop": "up to date", "lr2": "done"}


def test_variables_reach_the_steps_as_the_yaml_values_they_are(tmp_path):
    """A float var such as 1.0e-8 reaches a KEY=VALUE override as text YAML reads back as that float (Python's
    ``1e-08`` is a string to YAML 1.1, and `srprep train optim.eps=1e-08` refused it); booleans alike, and a
    string stays the text it is (a list is written as one: "[0.9,0.999]")."""
    values = {"eps": 1.0e-8, "big": 1.0e20, "lr": 2.0e-4, "flag": True, "n": 3, "path": "a b/c",
              "betas": "[0.9,0.999]"}
    spec = {"vars": values, "steps": {"t": {"command": "train", "args": [f"x.{k}={{{k}}}" for k in values]}}}
    pipe = load_pipeline(write(tmp_path, spec), overrides=["vars.lr=8.0e-6"])
    got = {a.split("=", 1)[0][2:]: yaml.safe_load(a.split("=", 1)[1]) for a in pipe.steps["t"].args}
    assert got == {**values, "lr": 8.0e-6, "betas": [0.9, 0.999]}


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


def test_force_of_a_training_step_starts_it_over(tmp_path, capsys):
    # train has no --force of its own: a forced train step loses its run folder and trains from step 0
    spec = yaml.safe_load(yaml.safe_dump(CHAIN))
    spec["steps"]["fit"] = {"command": "train", "args": ["train.iters=2", "val.every=0", "data.root={lr}"],
                            "options": {"config": "tiny_cpu", "run_dir": "{out}", "resume": "auto"}}
    p = write(tmp_path, spec)
    wd = tmp_path / "wd"
    assert run(capsys, p, "--workdir", wd, "--until", "fit")["fit"] == "done"
    (wd / "fit" / "stale.txt").write_text("from the first run")
    assert run(capsys, p, "--workdir", wd, "--until", "fit") == {"lr": "up to date", "fit": "up to date"}
    code = main(["run", str(p), "--workdir", str(wd), "--until", "fit", "--force", "fit"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "[fit] done" in out.out and "$ srprep train --force" not in out.out
    assert not (wd / "fit" / "stale.txt").exists() and (wd / "fit" / "last.pt").exists()


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


BAD = [
    (lambda s: s["steps"]["lr"]["args"].append("{lr2}"), "steps form a cycle: crop -> lr -> lr2 -> crop"),
    (lambda s: s["steps"]["crop"]["args"].append("{nowhere}"), "unknown step or variable {nowhere}"),
    (lambda s: s["steps"]["crop"].update(bogus=1), "unknown keys ['bogus']"),
    (lambda s: s["steps"]["crop"].pop("command"), "needs a 'command'"),
    (lambda s: s["steps"]["crop"].update(options=["scale", 4]),
     "step 'crop': options must be a mapping (options: {name: value}), not a list"),
    (lambda s: s.update(name=["chain"]), "name must be a non-empty string, not a list"),
    (lambda s: s.update(workdir=7), "workdir must be a non-empty string, not a number"),
    (lambda s: s["steps"]["crop"].update(args="{lr}/X2 {out}"), "step 'crop': args must be a list"),
    (lambda s: s["steps"]["crop"].update(options={"scale": {"x": 4}}),
     "step 'crop': options.scale must be a value or a list of values, not a mapping"),
    (lambda s: s["steps"]["crop"].update(replace="yes"), "step 'crop': replace must be true or false"),
    (lambda s: s["vars"].update(more=["a"]), "vars.more must be a string or a number, not a list"),
    (lambda s: (s["steps"]["lr"].update(out="/tmp/x"), s["steps"]["crop"].update(out="/tmp/x/")),
     "write to the same output /tmp/x"),
    (lambda s: (s["steps"]["lr"].update(out="x/./y"), s["steps"]["crop"].update(out="x/y")),
     "write to the same output x/"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_bad_pipelines_are_refused(tmp_path, change, message):
    spec = yaml.safe_load(yaml.safe_dump(CHAIN))
    change(spec)
    with pytest.raises(PipelineError) as info:
        load_pipeline(write(tmp_path, spec))
    assert message in str(info.value) and "\n" not in str(info.value)


CHECKED = [  # found when the file is loaded, against the command each step runs
    (lambda s: s["steps"]["lr2"]["options"].update(scael=[2]),
     "step 'lr2': options.scael: srprep downsample has no option --scael (did you mean scale?)"),
    (lambda s: s["steps"]["crop"]["options"].update(scale=[2, 3]), "step 'crop': options.scale: a list, but --scale "
                                                                   "takes one value"),
    (lambda s: s["steps"]["crop"]["options"].update(scale="abc"), "step 'crop': srprep modcrop: Invalid value for"),
    (lambda s: s["steps"]["crop"]["options"].update(force=False), "step 'crop': options.force: false, but --force "
                                                                  "is a flag without --no-"),
    (lambda s: s["steps"]["crop"]["options"].update(png_level=True), "options.png_level: true, but --png-level "
                                                                     "takes a value"),
    (lambda s: s["steps"]["crop"]["args"].append("--bogus"), "step 'crop': srprep modcrop: No such option '--bogus'"),
    (lambda s: s["steps"]["crop"]["args"].append("extra"), "step 'crop': srprep modcrop: Got unexpected extra "
                                                           "argument (extra)"),
    (lambda s: s["steps"]["crop"]["args"].pop(), "step 'crop': srprep modcrop: Missing argument 'DST'"),
    (lambda s: s["steps"]["crop"].update(command="modcorp"), "step 'crop': command: no srprep command 'modcorp'"),
    (lambda s: s["steps"].update(train={"command": "train", "args": ["train.iterz=3", "data.root={lr}"],
                                        "options": {"config": "tiny_cpu"}}),
     "step 'train': args: unknown option train.iterz (did you mean train.iters?)"),
]


@pytest.mark.parametrize("change, message", CHECKED)
def test_the_whole_file_is_checked_before_anything_runs(tmp_path, capsys, change, message):
    spec = yaml.safe_load(yaml.safe_dump(CHAIN))
    change(spec)
    assert main(["run", str(write(tmp_path, spec)), "--workdir", str(tmp_path / "wd")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err
    assert not (tmp_path / "wd").exists()  # not even the first step ran


def test_set_refuses_unknown_steps_options_and_variables(tmp_path, capsys):
    p = write(tmp_path, CHAIN)
    for bad, message in (("downsample.scale=[3]", "no step 'downsample' (steps: crop, lr, lr2)"),
                         ("crop.sacle=2", "options.sacle: srprep modcrop has no option --sacle"),
                         ("vars.imagez=x", "no variable 'imagez' (variables: images)")):
        assert main(["run", str(p), "--dry-run", "--set", bad]) == 1
        assert message in capsys.readouterr().err


def test_dry_run_names_every_missing_input_and_its_variable(tmp_path, capsys):
    spec = yaml.safe_load(yaml.safe_dump(CHAIN))
    spec["vars"]["images"] = str(tmp_path / "nowhere")
    spec["steps"]["lr2"]["args"][0] = "{crop}"  # made by the pipeline: never missing
    spec["steps"]["pack"] = {"command": "pack", "args": ["elsewhere/data", "{out}"]}
    p = write(tmp_path, spec)
    assert main(["run", str(p), "--workdir", str(tmp_path / "wd"), "--dry-run"]) == 1
    out = capsys.readouterr()
    assert "4 would run" in out.out
    assert out.err.splitlines() == [
        f"missing: step 'lr': args (SRC): {tmp_path / 'nowhere'} not found (from vars.images: --set vars.images=PATH)",
        "missing: step 'pack': args (SRC): elsewhere/data not found",
        f"error: {p}: 2 input(s) missing (listed above): a run would stop there"]
    # a real run stops before its first step
    assert main(["run", str(p), "--workdir", str(tmp_path / "wd")]) == 1
    assert "step 'lr': args (SRC)" in capsys.readouterr().err and not (tmp_path / "wd").exists()
    # --until: only the steps it covers
    spec["vars"]["images"] = "{srprep_samples}/set5"
    assert run(capsys, write(tmp_path, spec), "--workdir", tmp_path / "wd", "--until", "lr2") == dict.fromkeys(
        ["lr", "crop", "lr2"], "done")


def test_a_change_inside_a_dataset_folder_reruns_the_step(tmp_path, samples, capsys):
    data = tmp_path / "DATA"
    for field in ("HR", "X2"):
        (data / field).mkdir(parents=True)
    from srprep.io.images import read_image, write_image
    for name in ("baby", "bird"):
        hr = read_image(samples / f"set5/{name}.png")[:96, :96]
        write_image(data / "HR" / f"{name}.png", hr)
        write_image(data / "X2" / f"{name}x2.png", hr[::2, ::2])
    p = write(tmp_path, {"name": "packing", "vars": {"data": str(data)},
                         "steps": {"pack": {"command": "pack", "args": ["{data}", "{out}"],
                                            "options": {"jobs": 1}}}})
    wd = tmp_path / "wd"
    assert run(capsys, p, "--workdir", wd) == {"pack": "done"}
    assert run(capsys, p, "--workdir", wd, commands=0) == {"pack": "up to date"}
    hr = read_image(data / "HR/bird.png")
    hr[0, 0] = 255 - hr[0, 0]
    write_image(data / "HR/bird.png", hr)  # DATA/HR/*.png: one level below the step's input
    assert run(capsys, p, "--workdir", wd, commands=1) == {"pack": "done"}


def test_graph_text_and_png(tmp_path, capsys):
    p = write(tmp_path, CHAIN)
    assert main(["run", str(p), "--graph", "--graph-png", str(tmp_path / "g.png"),
                 "--graph-dot", str(tmp_path / "g.dot")]) == 0
    out = capsys.readouterr().out
    assert "crop [modcrop] <- lr" in out and "lr2 [downsample] <- crop" in out
    from srprep.io.images import read_image
    assert read_image(tmp_path / "g.png").shape[0] > 100
    dot = (tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph pipeline {") and '"lr" -> "crop";' in dot and '"crop" -> "lr2";' in dot
    assert '"lr2" [label=<<b>lr2</b><br/><font point-size="10">downsample</font>>];' in dot


def test_graph_rendered_by_graphviz(tmp_path, capsys):
    from srprep.io.graphviz import dot_available

    if not dot_available():
        assert main(["run", str(write(tmp_path, CHAIN)), "--graph", "--graph-svg", str(tmp_path / "g.svg")]) == 1
        assert "needs Graphviz's dot program" in capsys.readouterr().err
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    p = write(tmp_path, CHAIN)
    assert main(["run", str(p), "--graph", "--graph-png", str(tmp_path / "g.png"),
                 "--graph-svg", str(tmp_path / "g.svg")]) == 0
    svg = (tmp_path / "g.svg").read_text()
    assert "<svg" in svg and all(f">{name}</text>" in svg for name in ("lr", "crop", "lr2"))
    from srprep.io.images import read_image
    img = read_image(tmp_path / "g.png")  # three boxes in a column: taller than wide
    assert img.shape[0] > img.shape[1] > 50 and (img < 128).any()


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


def test_a_second_run_of_a_pipeline_is_refused_while_one_runs_and_a_dead_ones_lock_is_taken_over(tmp_path):
    from tests.test_lock import start_holder

    p = write(tmp_path, CHAIN)
    wd = tmp_path / "wd"
    holder = start_holder(wd / ".srprep-pipeline" / "chain.lock")  # a real second process
    try:
        proc = subprocess.run([sys.executable, "-m", "srprep", "run", str(p), "--workdir", str(wd)],
                              capture_output=True, text=True, cwd=REPO, timeout=600)
        assert proc.returncode == 1
        assert f"error: pipeline chain in {wd}: another srprep process is writing here (pid {holder.pid} on" \
            in proc.stderr
        assert not (wd / "lr").exists(), "nothing ran"
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    proc = subprocess.run([sys.executable, "-m", "srprep", "run", str(p), "--workdir", str(wd)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"took over the lock of a process that ended without releasing it (pid {holder.pid} on" in proc.stderr
    # a step's own output is locked too: a pipeline step refuses to write where another process writes
    holder = start_holder(wd / "crop" / ".srprep" / "lock")
    try:
        proc = subprocess.run([sys.executable, "-m", "srprep", "run", str(p), "--workdir", str(wd), "--force", "crop"],
                              capture_output=True, text=True, cwd=REPO, timeout=600)
        assert proc.returncode == 1 and f"another srprep process is writing here (pid {holder.pid} on" in proc.stderr
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
