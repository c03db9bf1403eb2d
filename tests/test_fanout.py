"""srprep.fanout.run_together: several cached steps served by one worker call per source, each step keeping
its own journal, manifest and resume."""
import json
import os
from pathlib import Path

import pytest

from srprep.errors import StageError
from srprep.fanout import run_together
from srprep.fingerprint import fingerprint
from srprep.runner import Item, ItemResult, Step, step_status

CALLS = []  # (group, sorted step names) of every worker call made in this process (jobs=1)


def write_all(job, *, outs, fail_on=None):
    """Toy group worker: writes <key>.txt = "<value><suffix>" into each step's folder it is asked for."""
    results = {}
    key, value = next(iter(job.values()))[0]
    CALLS.append((key, sorted(job)))
    if key == fail_on:
        raise ValueError(f"cannot handle value {value}")
    for name, payloads in job.items():
        out, suffix = outs[name]
        results[name] = []
        for k, v in payloads:
            tmp = Path(out) / f".{k}.tmp"
            tmp.write_text(f"{v}{suffix}")
            os.replace(tmp, Path(out) / f"{k}.txt")
            results[name].append(ItemResult(outputs=[f"{k}.txt"]))
    return results


def steps(tmp_path, suffixes):
    return [Step(f"toy:{n}", tmp_path / n, {"suffix": sfx}) for n, sfx in suffixes.items()]


def run(tmp_path, values, suffixes, jobs=1, **kw):
    import functools

    sts = steps(tmp_path, suffixes)
    items = [Item(k, fingerprint(v), (k, v)) for k, v in values.items()]
    outs = {st.name: (str(st.output), st.params["suffix"]) for st in sts}
    worker = functools.partial(write_all, outs=outs, fail_on=kw.pop("fail_on", None))
    return run_together([(st, items) for st in sts], worker, jobs=jobs, progress=False, **kw)


def files(folder: Path):
    return {p.name: p.read_text() for p in folder.glob("*.txt")}


def test_one_call_per_source_for_every_step_and_each_step_cached_on_its_own(tmp_path):
    CALLS.clear()
    reps = run(tmp_path, {"a": 1, "b": 2}, {"A": "!", "B": "?"})
    assert [(r.step, r.status, r.processed) for r in reps] == [("toy:A", "done", 2), ("toy:B", "done", 2)]
    assert sorted(CALLS) == [("a", ["toy:A", "toy:B"]), ("b", ["toy:A", "toy:B"])]
    assert files(tmp_path / "A") == {"a.txt": "1!", "b.txt": "2!"} and files(tmp_path / "B") == {"a.txt": "1?", "b.txt": "2?"}
    for name in "AB":
        assert json.loads((tmp_path / name / ".srprep/manifest.json").read_text())["complete"] is True
    # a third step later: only it is computed; a changed parameter of one step redoes only that step
    CALLS.clear()
    reps = run(tmp_path, {"a": 1, "b": 2}, {"A": "!", "B": "?", "C": "#"})
    assert [r.status for r in reps] == ["up to date", "up to date", "done"]
    assert sorted(CALLS) == [("a", ["toy:C"]), ("b", ["toy:C"])]
    CALLS.clear()
    reps = run(tmp_path, {"a": 1, "b": 2}, {"A": "!", "B": "*", "C": "#"})
    assert [(r.status, r.processed) for r in reps] == [("up to date", 0), ("done", 2), ("up to date", 0)]
    assert files(tmp_path / "B") == {"a.txt": "1*", "b.txt": "2*"}
    # a changed input: that item only, in every step; a removed one: deleted everywhere
    CALLS.clear()
    reps = run(tmp_path, {"a": 5}, {"A": "!", "B": "*", "C": "#"})
    assert [(r.processed, r.removed) for r in reps] == [(1, 1)] * 3
    assert CALLS == [("a", ["toy:A", "toy:B", "toy:C"])]
    assert files(tmp_path / "C") == {"a.txt": "5#"}


def test_dry_run_changes_nothing(tmp_path):
    reps = run(tmp_path, {"a": 1}, {"A": "!"}, dry_run=True)
    assert reps[0].status == "dry run" and reps[0].todo == ["a"] and not (tmp_path / "A").exists()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_source_names_step_item_and_cause_and_keeps_the_rest(tmp_path, jobs):
    values = {k: i for i, k in enumerate("abcdef")}
    with pytest.raises(StageError) as err:
        run(tmp_path, values, {"A": "!", "B": "?"}, jobs=jobs, fail_on="d")
    assert str(err.value) == "toy:A: item 'd' failed: ValueError: cannot handle value 3"
    for name in "AB":
        st = step_status(tmp_path / name / ".srprep")
        assert not st["complete"] and "d.txt" not in files(tmp_path / name)
        assert set(files(tmp_path / name)) >= {"a.txt"} if jobs == 1 else True
    CALLS.clear()
    reps = run(tmp_path, values, {"A": "!", "B": "?"})
    assert all(r.status == "done" and r.reused + r.processed == 6 for r in reps)
    assert "d" in [g for g, _ in CALLS] and (jobs == 2 or [g for g, _ in CALLS] == ["d", "e", "f"])


def test_force_redoes_every_step(tmp_path):
    run(tmp_path, {"a": 1}, {"A": "!", "B": "?"})
    CALLS.clear()
    reps = run(tmp_path, {"a": 1}, {"A": "!", "B": "?"}, force=True)
    assert [r.processed for r in reps] == [1, 1] and CALLS == [("a", ["toy:A", "toy:B"])]
