"""The step runner: cache, resume after a real kill, stale outputs, worker failures."""
import functools
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

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
