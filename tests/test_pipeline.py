"""Pipelines: step caching, downstream reruns, resume, bad files; a real local Dask cluster."""
import json
import os
import re
import signal
import subprocess
import sys
import time
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


def run(capsys, *args):
    code = main(["run", *map(str, args)])
    out = capsys.readouterr()
    assert code == 0, out.err
    return {m.group(1): m.group(2) for m in re.finditer(r"^\[(\w+)\] (done|up to date)", out.out, re.M)}


def test_steps_are_cached_and_a_change_reruns_exactly_the_downstream(tmp_path, capsys):
    p = write(tmp_path, CHAIN)
    wd = tmp_path / "wd"
    t0 = time.perf_counter()
    assert run(capsys, p, "--workdir", wd) == {"lr": "done", "crop": "done", "lr2": "done"}
    first = time.perf_counter() - t0
    assert len(list((wd / "lr2/X2").glob("*.png"))) == 5
    t0 = time.perf_counter()
    assert run(capsys, p, "--workdir", wd) == {"lr": "up to date", "crop": "up to date", "lr2": "up to date"}
    assert time.perf_counter() - t0 < 0.1 * first
    assert main(["run", str(p), "--workdir", str(wd), "--set", "crop.scale=2", "--dry-run"]) == 0
    assert "[crop] would run (--scale 4 -> 2)" in capsys.readouterr().out  # says which option changed
    assert run(capsys, p, "--workdir", wd, "--set", "crop.scale=2") == {
        "lr": "up to date", "crop": "done", "lr2": "done"}
    assert run(capsys, p, "--workdir", wd, "--set", "lr2.scale=[4]", "--set", "crop.scale=2") == {
        "lr": "up to date", "crop": "up to date", "lr2": "done"}


def test_variables_reach_the_steps_as_the_yaml_values_they_are(tmp_path):
    """A float var such as 1.0e-8 reaches a KEY=VALUE override as text YAML reads back as that float (Python's
    ``1e-08`` is a string to YAML 1.1, and `srprep train optim.eps=1e-08` refused it); lists, booleans alike."""
    values = {"eps": 1.0e-8, "big": 1.0e20, "lr": 2.0e-4, "betas": [0.9, 0.999], "flag": True, "n": 3,
              "none": None, "path": "a b/c"}
    spec = {"vars": values, "steps": {"t": {"command": "train", "args": [f"x.{k}={{{k}}}" for k in values]}}}
    pipe = load_pipeline(write(tmp_path, spec), overrides=["vars.lr=8.0e-6"])
    got = {a.split("=", 1)[0][2:]: yaml.safe_load(a.split("=", 1)[1]) for a in pipe.steps["t"].args}
    assert got == {**values, "lr": 8.0e-6}


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


def test_killed_pipeline_resumes(tmp_path, capsys):
    spec = yaml.safe_load(yaml.safe_dump(CHAIN))
    spec["vars"]["images"] = "{srprep_samples}/kodak"
    p = write(tmp_path, spec)
    wd = tmp_path / "wd"
    proc = subprocess.Popen([sys.executable, "-m", "srprep", "-q", "run", str(p), "--workdir", str(wd)],
                            cwd=REPO, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((wd / "crop").glob("*.png")):
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
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


@pytest.fixture
def dask_cluster(tmp_path):
    """A real scheduler and two single-threaded workers on loopback, torn down after the test."""
    pytest.importorskip("distributed")
    bindir = Path(sys.executable).parent
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        address = yaml.safe_load(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([str(bindir / "dask"), "worker", address, "--nworkers", "1",
                                           "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _tree_bytes(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".srprep" not in p.parts}


def test_data_steps_on_a_local_dask_cluster_match_the_local_run(dask_cluster, tmp_path, samples, capsys):
    src = samples / "kodak"
    assert main(["-q", "downsample", str(src), str(tmp_path / "local"), "-s", "2", "-s", "3"]) == 0
    assert main(["-q", "--scheduler", dask_cluster, "downsample", str(src), str(tmp_path / "dask"),
                 "-s", "2", "-s", "3"]) == 0
    local, remote = _tree_bytes(tmp_path / "local"), _tree_bytes(tmp_path / "dask")
    assert len(local) == 24 and local == remote
    # pack: workers decode/crop/encode, the one writer stays here; the stores hold the same records
    for name in ("local", "dask"):
        args = ["-q"] + (["--scheduler", dask_cluster] if name == "dask" else [])
        assert main(args + ["pack", str(tmp_path / name), str(tmp_path / f"{name}_packed"), "--encoding", "png",
                            "--crop", "--size", "96", "--step", "48"]) == 0
    from srprep.io.stores import open_store
    for field in ("HR.lmdb", "X2.lmdb", "X3.lmdb"):
        a, b = open_store(tmp_path / "local_packed" / field), open_store(tmp_path / "dask_packed" / field)
        assert sorted(a.keys()) == sorted(b.keys()) and len(a.keys()) > 50
        assert all((a.read(k) == b.read(k)).all() for k in a.keys())
    assert (tmp_path / "local_packed/HR.lmdb/meta_info.txt").read_text() == \
        (tmp_path / "dask_packed/HR.lmdb/meta_info.txt").read_text()


@pytest.mark.parametrize("path", sorted((REPO / "pipelines").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_pipelines_resolve_to_real_commands(path, tmp_path, capsys):
    assert main(["run", str(path), "--graph", "--graph-png", str(tmp_path / "g.png")]) == 0
    assert "steps ->" in capsys.readouterr().out


def test_quickstart_runs_end_to_end_is_cached_and_reported(tmp_path, capsys):
    """The README's main job: downsample -> teacher -> centroids -> pack -> ECO training -> eval."""
    wd = tmp_path / "qs"
    t0 = time.perf_counter()
    steps = run(capsys, REPO / "pipelines/quickstart.yaml", "--workdir", wd)
    first = time.perf_counter() - t0
    assert steps == dict.fromkeys(["data", "set5", "teacher", "centroids", "pack", "eco", "eval"], "done")
    rows = (wd / "eval_set5.csv").read_text().splitlines()
    assert rows[0].startswith("dataset,scale,image,psnr") and len(rows) >= 6
    val = (wd / "eco/val.csv").read_text().splitlines()[-1].split(",")
    assert float(val[1]) > float(val[3]), "the ECO-trained network must beat bicubic on held-out images"
    t0 = time.perf_counter()
    assert set(run(capsys, REPO / "pipelines/quickstart.yaml", "--workdir", wd).values()) == {"up to date"}
    assert time.perf_counter() - t0 < 0.1 * first
    assert run(capsys, REPO / "pipelines/quickstart.yaml", "--workdir", wd, "--set", "vars.eco_iters=120") == {
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
