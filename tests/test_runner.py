"""The step runner: cache, resume after a real kill, stale outputs, worker failures."""
import functools
import json
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest

from srprep import runner
from srprep.errors import StageError, StoreError
from srprep.fingerprint import fingerprint
from srprep.runner import Item, ItemResult, Step, find_step_outputs, run_step, step_status

REPO = Path(__file__).resolve().parents[1]


def write_text_item(payload, *, out, suffix, delay=0.0, fail_on=None):
    """Toy worker: writes <key>.txt holding the payload and the suffix parameter."""
    key, value = payload
    if key == fail_on:
        raise ValueError(f"cannot handle value {value}")
    if delay:
        time.sleep(delay)
    tmp = Path(out) / f".{key}.tmp"
    tmp.write_text(f"{value}{suffix}")
    os.replace(tmp, Path(out) / f"{key}.txt")
    return ItemResult(outputs=[f"{key}.txt"], info={"pid": os.getpid()})


def make_items(values: dict):
    return [Item(k, fingerprint(v), (k, v)) for k, v in values.items()]


def run(tmp_path, values, suffix="!", **kw):
    out = tmp_path / "out"
    worker_kw = {k: kw.pop(k) for k in ("delay", "fail_on") if k in kw}
    worker = functools.partial(write_text_item, out=str(out), suffix=suffix, **worker_kw)
    step = Step("toy", out, {"suffix": suffix})
    return run_step(step, make_items(values), worker, progress=False, **{"jobs": 1, **kw})


def outputs(tmp_path):
    return {p.name: p.read_text() for p in (tmp_path / "out").glob("*.txt")}


def test_first_run_processes_everything_and_writes_manifest(tmp_path):
    rep = run(tmp_path, {"a": 1, "b": 2, "c": 3})
    assert (rep.status, rep.processed, rep.reused) == ("done", 3, 0)
    assert outputs(tmp_path) == {"a.txt": "1!", "b.txt": "2!", "c.txt": "3!"}
    manifest = json.loads((tmp_path / "out/.srprep/manifest.json").read_text())
    assert manifest["complete"] is True and manifest["items"] == 3 and manifest["params"] == {"suffix": "!"}


def test_second_run_is_up_to_date_and_touches_nothing(tmp_path):
    run(tmp_path, {"a": 1, "b": 2})
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.txt")}
    rep = run(tmp_path, {"a": 1, "b": 2}, fail_on="a")  # would fail if it processed anything
    assert rep.status == "up to date" and rep.processed == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.txt")} == mtimes


def test_parameter_change_redoes_every_item(tmp_path):
    run(tmp_path, {"a": 1, "b": 2})
    rep = run(tmp_path, {"a": 1, "b": 2}, suffix="?")
    assert rep.processed == 2 and rep.reused == 0
    assert outputs(tmp_path) == {"a.txt": "1?", "b.txt": "2?"}


def test_parameter_change_says_which_parameter_changed_before_replacing(tmp_path, caplog):
    run(tmp_path, {"a": 1, "b": 2})
    rep = run(tmp_path, {"a": 1, "b": 2}, suffix="?", dry_run=True)
    assert rep.changed == ['suffix: "!" -> "?"'] and 'replacing the output: suffix: "!" -> "?"' in rep.summary()
    with caplog.at_level("INFO", logger="srprep.runner"):
        rep = run(tmp_path, {"a": 1, "b": 2}, suffix="?")
    assert 'made with other parameters (suffix: "!" -> "?"): replacing its 2 item(s)' in caplog.text
    # an interrupted run (journal only, no manifest) is compared with the parameters it was started with
    (tmp_path / "out/.srprep/manifest.json").unlink()
    assert run(tmp_path, {"a": 1, "b": 2}, suffix="%", dry_run=True).changed == ['suffix: "?" -> "%"']
    assert run(tmp_path, {"a": 1, "b": 2}, suffix="%", force=True).changed == []  # --force: nothing to explain


def test_changed_input_redoes_only_that_item_and_stale_items_are_removed(tmp_path):
    run(tmp_path, {"a": 1, "b": 2, "c": 3})
    rep = run(tmp_path, {"a": 1, "b": 20, "d": 4})
    assert (rep.processed, rep.reused, rep.removed) == (2, 1, 1)
    assert outputs(tmp_path) == {"a.txt": "1!", "b.txt": "20!", "d.txt": "4!"}
    assert run(tmp_path, {"a": 1, "b": 20, "d": 4}).status == "up to date"


def test_force_redoes_and_dry_run_changes_nothing(tmp_path):
    run(tmp_path, {"a": 1, "b": 2})
    rep = run(tmp_path, {"a": 1, "b": 2, "c": 3}, dry_run=True)
    assert rep.status == "dry run" and rep.todo == ["c"]
    assert "c.txt" not in outputs(tmp_path)
    assert (tmp_path / "out/.srprep/manifest.json").exists()
    rep = run(tmp_path, {"a": 1, "b": 2}, force=True)
    assert rep.processed == 2


def test_worker_error_names_the_item_keeps_finished_work_and_never_marks_complete(tmp_path):
    with pytest.raises(StageError, match=r"toy: item 'c' failed: ValueError: cannot handle value 3"):
        run(tmp_path, {"a": 1, "b": 2, "c": 3, "d": 4}, fail_on="c")
    assert not (tmp_path / "out/.srprep/manifest.json").exists()
    st = step_status(tmp_path / "out/.srprep")
    assert st["complete"] is False and st["done"] == 2 and st["total"] == 4 and st["step"] == "toy"
    rep = run(tmp_path, {"a": 1, "b": 2, "c": 3, "d": 4})
    assert (rep.processed, rep.reused) == (2, 2)
    assert step_status(tmp_path / "out/.srprep")["complete"] is True


def test_worker_error_in_a_worker_process_names_the_item(tmp_path):
    values = {f"k{i:02d}": i for i in range(12)}
    with pytest.raises(StageError, match=r"item 'k07' failed: ValueError"):
        run(tmp_path, values, fail_on="k07", jobs=2)
    assert not (tmp_path / "out/.srprep/manifest.json").exists()


def test_parallel_run_uses_processes_and_gives_the_same_outputs(tmp_path):
    values = {f"k{i:02d}": i for i in range(16)}
    # long enough items that the second worker process is up before the first has taken them all
    rep = run(tmp_path, values, jobs=2, delay=0.1)
    assert rep.processed == 16
    assert len({info["pid"] for info in rep.infos.values()}) >= 2
    assert outputs(tmp_path) == {f"{k}.txt": f"{v}!" for k, v in values.items()}


def test_duplicate_and_invalid_keys_are_refused(tmp_path):
    out = tmp_path / "out"
    worker = functools.partial(write_text_item, out=str(out), suffix="")
    with pytest.raises(StoreError, match="duplicate keys"):
        run_step(Step("toy", out, {}), [Item("a", "1", ("a", 1)), Item("a", "2", ("a", 2))], worker,
                 progress=False)
    for bad in ("../x", "a/b", "", ".hidden", "a\nb"):
        with pytest.raises(StoreError, match="invalid key"):
            run_step(Step("toy", out, {}), [Item(bad, "1", (bad, 1))], worker, progress=False)


def test_torn_journal_line_is_ignored(tmp_path):
    run(tmp_path, {"a": 1, "b": 2})
    (tmp_path / "out/.srprep/manifest.json").unlink()
    with open(tmp_path / "out/.srprep/journal.jsonl", "a") as fh:
        fh.write('{"key": "c", "fp": "12')  # what a kill in the middle of a write leaves
    rep = run(tmp_path, {"a": 1, "b": 2, "c": 3})
    assert (rep.processed, rep.reused) == (1, 2)


KILL_SCRIPT = textwrap.dedent("""
    import functools, sys
    sys.path.insert(0, {tests!r})
    from test_runner import write_text_item, make_items
    from srprep.runner import Step, run_step
    out = sys.argv[1]
    values = {{f"k{{i:03d}}": i for i in range(60)}}
    worker = functools.partial(write_text_item, out=out, suffix="!", delay=0.05)
    run_step(Step("toy", out, {{"suffix": "!"}}), make_items(values), worker, jobs=2, progress=False)
""")


def test_run_killed_half_way_resumes_with_every_item_once(tmp_path, kill_when):
    out = tmp_path / "out"
    script = tmp_path / "job.py"
    script.write_text(KILL_SCRIPT.format(tests=str(REPO / "tests")))
    # kill_when kills the whole group: the runner and its worker processes
    # killed once 15 items are recorded; the workers may have written a few more files by then, unrecorded
    kill_when([sys.executable, str(script), str(out)], out, "*.txt", 15, step="toy",
              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert not (out / ".srprep/manifest.json").exists()

    values = {f"k{i:03d}": i for i in range(60)}
    rep = run(tmp_path, values, jobs=2)
    assert (rep.processed, rep.reused) == (45, 15)
    assert outputs(tmp_path) == {f"{k}.txt": f"{v}!" for k, v in values.items()}
    assert not list(out.glob(".*.tmp"))
    keys = [json.loads(line)["key"] for line in (out / ".srprep/journal.jsonl").read_text().splitlines()
            if line.startswith('{"key"')]
    assert sorted(set(keys)) == sorted(values)
    assert len(keys) == 60, "an item recorded twice means it was processed twice"


def test_find_step_outputs(tmp_path):
    run(tmp_path, {"a": 1})
    assert find_step_outputs(tmp_path) == [tmp_path / "out" / ".srprep"]


def test_torn_temporary_files_are_cleaned_up_on_the_next_run(tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / ".a.png.3f2a.tmp").write_bytes(b"half")
    (out / "sub" / ".b.png.77aa.tmp").write_bytes(b"half")
    (out / "sub" / ".c.npy.tmp4242").write_bytes(b"half")  # the pid-suffixed form of the atomic writers
    (out / "keep.tmp").write_bytes(b"not ours: not hidden")
    (out / ".hidden.tmpl").write_bytes(b"not a temporary name")
    run(tmp_path, {"a": 1})
    assert sorted(p.name for p in out.rglob(".*.tmp*")) == [".hidden.tmpl"]
    assert (out / "keep.tmp").exists() and (out / ".hidden.tmpl").exists()


# ------------------------------------------------------------------ outputs checked, hashes recorded


def journal_records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / ".srprep/journal.jsonl").read_text().splitlines()
            if line.startswith('{"key"')]


def test_each_output_is_recorded_with_its_size_and_sha256_as_written(tmp_path):
    import hashlib

    run(tmp_path, {"a": 1, "b": 22})
    recs = {r["key"]: r for r in journal_records(tmp_path / "out")}
    data = (tmp_path / "out/b.txt").read_bytes()
    assert recs["b"]["files"] == {"b.txt": [len(data), hashlib.sha256(data).hexdigest()]}


def test_a_deleted_output_is_noticed_by_the_rerun_and_repaired(tmp_path, caplog):
    run(tmp_path, {"a": 1, "b": 2, "c": 3})
    (tmp_path / "out/b.txt").unlink()
    with caplog.at_level("WARNING"):
        rep = run(tmp_path, {"a": 1, "b": 2, "c": 3})
    assert (rep.status, rep.processed, rep.reused) == ("done", 1, 2)
    assert "1 item(s) have output files that are missing or changed size" in caplog.text and "b" in caplog.text
    assert outputs(tmp_path) == {"a.txt": "1!", "b.txt": "2!", "c.txt": "3!"}
    assert step_status(tmp_path / "out/.srprep")["complete"] is True
    assert run(tmp_path, {"a": 1, "b": 2, "c": 3}).status == "up to date"


def test_an_output_that_changed_size_is_redone_but_a_same_size_edit_is_left_to_verify(tmp_path):
    run(tmp_path, {"a": 10, "b": 20})
    (tmp_path / "out/a.txt").write_text("truncated!!")  # another size
    (tmp_path / "out/b.txt").write_text("XX!")  # same size: the fast check does not read contents
    rep = run(tmp_path, {"a": 10, "b": 20})
    assert rep.processed == 1
    assert outputs(tmp_path) == {"a.txt": "10!", "b.txt": "XX!"}


def test_a_missing_output_of_an_interrupted_run_is_redone_on_resume(tmp_path):
    with pytest.raises(StageError):
        run(tmp_path, {"a": 1, "b": 2, "c": 3}, fail_on="c")
    (tmp_path / "out/a.txt").unlink()
    rep = run(tmp_path, {"a": 1, "b": 2, "c": 3})
    assert (rep.processed, rep.reused) == (2, 1)
    assert outputs(tmp_path) == {"a.txt": "1!", "b.txt": "2!", "c.txt": "3!"}


# ------------------------------------------------------------------ where a step may write


def toy_step(out: Path, name="toy", **kw) -> Step:
    return Step(name, out, {"suffix": "!"}, **kw)


def run_toy(step: Step, values: dict, **kw):
    worker = functools.partial(write_text_item, out=str(step.output), suffix="!")
    return run_step(step, make_items(values), worker, progress=False, jobs=1, **kw)


@pytest.mark.parametrize("where,how", [(".", "is"), ("..", "contains"), ("sub", "lies inside")])
def test_an_output_that_is_contains_or_lies_inside_an_input_is_refused(tmp_path, where, how):
    src = tmp_path / "data" / "src"
    src.mkdir(parents=True)
    (src / "keep.txt").write_text("input")
    out = (src / where).resolve()
    with pytest.raises(StoreError, match=rf"the output of toy {how} its input .*src; choose a destination"):
        run_toy(toy_step(out, reads=(src,)), {"a": 1})
    assert (src / "keep.txt").read_text() == "input"
    assert not (src / ".srprep").exists() and not (src / "a.txt").exists(), "a refused step leaves no trace"
    with pytest.raises(StoreError, match="its input"):  # the dry run says so too
        run_toy(toy_step(out, reads=(src,)), {"a": 1}, dry_run=True)


def test_an_output_that_overlaps_another_steps_output_is_refused(tmp_path):
    run_toy(toy_step(tmp_path / "data" / "HR", name="first"), {"a": 1})
    state = (tmp_path / "data/HR/.srprep/journal.jsonl").read_text()
    for out in (tmp_path / "data", tmp_path / "data" / "HR" / "sub"):
        with pytest.raises(StoreError, match=r"the output of second (contains|lies inside) the output of another "
                                             r"step \(first in .*HR\)"):
            run_toy(toy_step(out, name="second"), {"b": 2})
    with pytest.raises(StoreError, match=r"HR: holds the output of step 'first', not of 'second'"):
        run_toy(toy_step(tmp_path / "data" / "HR", name="second"), {"b": 2})
    assert (tmp_path / "data/HR/.srprep/journal.jsonl").read_text() == state
    # a step that declares what it writes may share a folder with others (e.g. new stores beside a dataset)
    beside = toy_step(tmp_path / "data" / "extra", name="second", writes=(tmp_path / "data" / "extra",))
    assert run_toy(beside, {"b": 2}).processed == 1


def test_a_neighbours_journal_removed_while_it_is_read_claims_nothing(tmp_path, monkeypatch):
    """Steps run together (downsample's scales) look at each other's state while one of them replaces its
    output: a journal that is gone by the time it is opened is no record, not a crash."""
    run_toy(toy_step(tmp_path / "data" / "X3", name="x3"), {"a": 1})
    (tmp_path / "data/X3/.srprep/manifest.json").unlink()  # x3 is replacing its output: manifest gone first
    journal = (tmp_path / "data/X3/.srprep/journal.jsonl").resolve()
    real_open = open

    def open_after_x3_removed_its_journal(path, *args, **kwargs):
        if Path(path).resolve() == journal:
            journal.unlink(missing_ok=True)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(runner, "open", open_after_x3_removed_its_journal, raising=False)
    assert runner.territory_of(journal.parent) == (None, [])
    (tmp_path / "data/X3/.srprep/journal.jsonl").write_text(json.dumps({"run": {"step": "x3"}}) + "\n")
    assert run_toy(toy_step(tmp_path / "data" / "X2", name="x2"), {"b": 2}).processed == 1
    assert not journal.exists()


def test_the_temporary_file_cleanup_never_follows_a_link_out_of_the_output(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / ".precious.png.1234.tmp").write_text("someone else's")
    out = tmp_path / "out"
    out.mkdir()
    (out / "linked").symlink_to(outside, target_is_directory=True)
    (out / ".torn.png.77.tmp").write_text("ours")
    run(tmp_path, {"a": 1})
    assert (outside / ".precious.png.1234.tmp").read_text() == "someone else's"
    assert not (out / ".torn.png.77.tmp").exists()


# ------------------------------------------------------------------ one writer per output (two real processes)


LOCK_SCRIPT = textwrap.dedent("""
    import functools, sys
    sys.path.insert(0, {tests!r})
    from test_runner import write_text_item, make_items
    from srprep.cli import main
    from srprep.runner import Step, run_step
    out, suffix, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    values = {{f"k{{i:02d}}": i for i in range(20)}}
    worker = functools.partial(write_text_item, out=out, suffix=suffix, delay=delay)
    rep = run_step(Step("toy", out, {{"suffix": suffix}}), make_items(values), worker, jobs=1, progress=False)
    print(rep.summary())
""")


def test_a_second_writer_is_refused_while_the_first_runs_and_takes_over_after_it_died(tmp_path):
    import signal
    import subprocess

    out = tmp_path / "out"
    script = tmp_path / "job.py"
    script.write_text(LOCK_SCRIPT.format(tests=str(REPO / "tests")))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen([sys.executable, str(script), str(out), "!", "5"], env=env, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(out.glob("*.txt")):
            time.sleep(0.05)
        assert list(out.glob("*.txt")), "the first writer never started"
        second = subprocess.run([sys.executable, str(script), str(out), "?", "0"], env=env, capture_output=True,
                                text=True, timeout=300)
        assert second.returncode != 0
        assert f"another srprep process is writing here (pid {first.pid} on " in second.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # the first one died holding the lock: the next writer takes it over, says so, and finishes
    third = subprocess.run([sys.executable, str(script), str(out), "?", "0"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert f"took over the lock of a process that ended without releasing it (pid {first.pid} on" in third.stderr
    assert {p.read_text() for p in out.glob("*.txt")} == {f"{i}?" for i in range(20)}


# ------------------------------------------------------------------ errors in one line


def kill_self_on(payload, *, out, victim):
    import signal

    if payload[0] == victim:
        os.kill(os.getpid(), signal.SIGKILL)
    return write_text_item(payload, out=out, suffix="!", delay=0.2)


def test_a_worker_process_that_dies_is_named_by_its_item(tmp_path):
    out = tmp_path / "out"
    values = {f"k{i:02d}": i for i in range(8)}
    worker = functools.partial(kill_self_on, out=str(out), victim="k03")
    with pytest.raises(StageError, match=r"^toy: item 'k03' failed: its worker process died \(exit SIGKILL\(-9\); "
                                         r"out of memory, or a crash in a library\), and it dies again when run alone"):
        run_step(Step("toy", out, {}), make_items(values), worker, jobs=2, progress=False)
    assert not (out / ".srprep/running").exists()
    rep = run_step(Step("toy", out, {}), make_items(values),
                   functools.partial(kill_self_on, out=str(out), victim=None), jobs=2, progress=False)
    assert rep.processed + rep.reused == 8


def fill(disk: Path, leave: int) -> None:
    """Fill a small file system up to ``leave`` free bytes."""
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def test_a_full_disk_names_the_journal_and_the_manifest_in_one_line(small_disk, tmp_path):
    from srprep.errors import SrprepError
    from srprep.runner import write_json_atomic

    fill(small_disk, leave=2 * 4096)  # a page for the lock record, one for the journal: ~15 lines
    out = tmp_path / "out"
    step = Step("toy", out, {"suffix": "!"}, state_dir=small_disk / "state")
    values = {f"k{i:03d}": i for i in range(200)}
    worker = functools.partial(write_text_item, out=str(out), suffix="!")
    with pytest.raises(SrprepError) as info:
        run_step(step, make_items(values), worker, jobs=1, progress=False)
    assert str(info.value).startswith(f"{small_disk}/state/journal.jsonl: cannot write: the disk is full (")
    assert "\n" not in str(info.value)
    with pytest.raises(SrprepError, match=rf"^{small_disk}/m.json: cannot write: the disk is full"):
        write_json_atomic(small_disk / "m.json", {"x": "y" * 100000})
    assert not [p for p in small_disk.iterdir() if p.name.startswith(".m.json")], "no temporary file is left"


def die_at_start(payload, *, out):
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_that_dies_before_it_begins_an_item_is_said_so(tmp_path, monkeypatch):
    import srprep.runner as runner

    out = tmp_path / "out"
    real_call = runner._call
    # the worker dies before it notes an item (as when it is killed while it is still starting)
    monkeypatch.setattr(runner, "_call",
                        lambda worker, item, output=None, running=None: real_call(worker, item, output))
    # both workers may take an item and die before joblib reports the first death: one code or two
    with pytest.raises(StageError, match=r"^toy: a worker process died \(exit SIGKILL\(-9\)(, SIGKILL\(-9\))?\) "
                                         r"before it began an item"):
        run_step(Step("toy", out, {}), make_items({"a": 1, "b": 2}), functools.partial(die_at_start, out=str(out)),
                 jobs=2, progress=False)


def note_start(payload, *, folder):
    """Toy worker: leaves a file saying it began ``payload``."""
    Path(folder, f"{payload}.started").touch()


def test_workers_run_at_most_a_window_ahead_of_the_caller(tmp_path):
    # joblib hands finished results over whether or not the caller took the earlier ones: a slow caller
    # (one LMDB writer behind many decoders) would hold them all. The runner gives joblib a window at a time.
    from srprep.runner import _results

    items = [Item(f"k{i:03d}", "fp", f"k{i:03d}") for i in range(120)]
    worker = functools.partial(note_start, folder=str(tmp_path))
    results = _results(worker, items, 2, None, tmp_path / "running", "toy")
    next(results)
    time.sleep(3)  # the caller is busy; without windows the workers go on through all 120 items
    assert len(list(tmp_path.glob("*.started"))) <= 16  # 8 per worker
    assert len(list(results)) == len(items) - 1
    assert len(list(tmp_path.glob("*.started"))) == len(items)
