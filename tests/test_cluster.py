"""--scheduler: data steps on a real local Dask cluster (a scheduler and worker processes on 127.0.0.1, started
here) give the bytes of a local run, with absolute and relative paths, for single commands and pipelines."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from srprep.cli import main
from srprep.io.stores import open_store

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("distributed")


def start_cluster(tmp_path: Path, workers: int = 2, *, cwd: Path, wrap: list[str] = ()):
    """Start a scheduler and ``workers`` single-threaded worker processes (each run as ``wrap + [dask worker
    ...]``, in ``cwd``: not the client's working directory). Returns (address, processes)."""
    bindir = Path(sys.executable).parent
    sched_file = tmp_path / f"scheduler-{len(list(tmp_path.glob('scheduler-*')))}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cwd.mkdir(parents=True, exist_ok=True)
    procs = [subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)], cwd=cwd,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 300
        while not sched_file.exists():
            assert time.monotonic() < deadline and procs[0].poll() is None, "the scheduler did not start"
            time.sleep(0.1)
        address = yaml.safe_load(sched_file.read_text())["address"]
        for _ in range(workers):
            procs.append(subprocess.Popen([*wrap, str(bindir / "dask"), "worker", address, "--nworkers", "1",
                                           "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], cwd=cwd,
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client
        with Client(address, timeout=120) as client:
            client.wait_for_workers(workers, timeout=300)
    except BaseException:
        stop_cluster(procs)
        raise
    return address, procs


def stop_cluster(procs) -> None:
    for proc in reversed(procs):
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """(address, the workers' working directory) of a real scheduler and two workers on loopback, for the
    module. The workers' folder is not any test's working directory, and stays empty."""
    root = tmp_path_factory.mktemp("cluster")
    address, procs = start_cluster(root, cwd=root / "workers_cwd")
    yield address, root / "workers_cwd"
    stop_cluster(procs)


def _tree_bytes(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".srprep" not in p.parts}


def _same_stores(a: Path, b: Path, fields) -> None:
    for field in fields:
        x, y = open_store(a / field), open_store(b / field)
        assert sorted(x.keys()) == sorted(y.keys()) and len(x.keys()) > 50
        assert all((x.read(k) == y.read(k)).all() for k in x.keys())
        ma, mb = (d / field / "meta_info.txt" for d in (a, b))  # BasicSR's list, in PNG-encoded stores
        assert ma.exists() == mb.exists() and (not ma.exists() or ma.read_text() == mb.read_text())


def test_data_steps_match_the_local_run(dask_cluster, tmp_path, samples):
    address, _ = dask_cluster
    src = samples / "kodak"
    assert main(["-q", "downsample", src, tmp_path / "local", "-s", "2", "-s", "3"]) == 0
    assert main(["-q", "--scheduler", address, "downsample", src, tmp_path / "dask", "-s", "2", "-s", "3"]) == 0
    local, remote = _tree_bytes(tmp_path / "local"), _tree_bytes(tmp_path / "dask")
    assert len(local) == 24 and local == remote
    # pack: workers decode/crop/encode, the one writer stays here; the stores hold the same records
    for name in ("local", "dask"):
        args = ["-q"] + (["--scheduler", address] if name == "dask" else [])
        assert main(args + ["pack", tmp_path / name, tmp_path / f"{name}_packed", "--encoding", "png",
                            "--crop", "--size", "96", "--step", "48"]) == 0
    _same_stores(tmp_path / "local_packed", tmp_path / "dask_packed", ["HR.lmdb", "X2.lmdb", "X3.lmdb"])


def test_relative_paths_reach_the_workers(dask_cluster, tmp_path, samples, monkeypatch):
    """The workers run in another folder: relative paths given here must name the same files there."""
    address, workers_cwd = dask_cluster
    monkeypatch.chdir(tmp_path)
    shutil.copytree(samples / "set5", "data/HR_src")
    # locally in this process (-j 1): local worker processes may outlive a chdir and keep their own folder
    for name, extra in (("local", ["-j", "1"]), ("dask", [])):
        top = ["-q", "--scheduler", address] if name == "dask" else ["-q"]
        assert main([*top, "downsample", "data/HR_src", f"{name}/DIV2K", "-s", "2", *extra]) == 0
        assert main([*top, "pack", f"{name}/DIV2K", f"{name}/packed", "--crop", "--size", "48", "--step", "24",
                     *extra]) == 0
        assert main([*top, "crop", f"{name}/DIV2K/HR", "--lr", f"{name}/DIV2K/X2", f"{name}/sub", "--size", "96",
                     "--step", "48", *extra]) == 0
    for part in ("DIV2K", "sub"):
        assert _tree_bytes(Path("local", part)) == _tree_bytes(Path("dask", part))
    assert len(_tree_bytes(Path("dask/sub"))) > 100
    assert not list(workers_cwd.iterdir())  # nothing was written where the workers run
    _same_stores(Path("local/packed"), Path("dask/packed"), ["HR.lmdb", "X2.lmdb"])


def test_a_pipeline_with_relative_paths(dask_cluster, tmp_path, samples, monkeypatch, capsys):
    address, workers_cwd = dask_cluster
    monkeypatch.chdir(tmp_path)
    shutil.copytree(samples / "set5", "images")
    Path("p.yaml").write_text(yaml.safe_dump({
        "name": "rel", "workdir": "wd", "vars": {"images": "images"},
        "steps": {"lr": {"command": "downsample", "args": ["{images}", "{out}"], "options": {"scale": [2]}},
                  "crop": {"command": "modcrop", "args": ["{lr}/X2", "{out}"], "options": {"scale": 4}},
                  "pack": {"command": "pack", "args": ["{lr}", "{out}"],
                           "options": {"crop": True, "size": 96, "step": 48}}}}))
    assert main(["-q", "run", "p.yaml", "--workdir", "local", "--set", "lr.jobs=1", "--set", "crop.jobs=1",
                 "--set", "pack.jobs=1"]) == 0
    assert main(["--scheduler", address, "run", "p.yaml"]) == 0
    assert "rel: 3 ran" in capsys.readouterr().out
    for step in ("lr", "crop"):
        assert _tree_bytes(Path("local", step)) == _tree_bytes(Path("wd", step))
    assert len(_tree_bytes(Path("wd/crop"))) == 5
    _same_stores(Path("local/pack"), Path("wd/pack"), ["HR.lmdb", "X2.lmdb"])
    assert not list(workers_cwd.iterdir())


def _can_unshare() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare --mount (root) to give a worker its own view")
def test_a_path_the_workers_do_not_see_is_a_one_line_error(tmp_path, samples, capsys):
    hidden = tmp_path / "local_disk"  # a worker whose own empty tmpfs hides this folder
    shutil.copytree(samples / "set5", hidden / "HR")
    wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs none "$0" && exec "$@"', str(hidden)]
    address, procs = start_cluster(tmp_path, 1, cwd=tmp_path / "workers_cwd", wrap=wrap)
    try:
        assert main(["-q", "--scheduler", address, "modcrop", hidden / "HR", tmp_path / "out", "-s", "2"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.splitlines() == [err] and err.startswith(f"error: {hidden / 'HR'}: not found by the Dask worker")
        assert "same paths" in err and not (tmp_path / "out").exists()
    finally:
        stop_cluster(procs)
