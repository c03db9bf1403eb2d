"""Pipelines: chains of srprep commands in one YAML file, cached step by step.

A pipeline file::

    name: quickstart
    workdir: quickstart                 # where step outputs go (relative to the current directory)
    scheduler: null                     # or tcp://host:8786: data steps run on a Dask cluster
    vars:
      samples: "{srprep_samples}"       # built in: the images bundled with srprep
    steps:
      downsample:                       # a step: one srprep command
        command: downsample
        args: ["{samples}/kodak", "{out}"]
        options: {scale: [2]}
      pack:
        command: pack
        args: ["{downsample}", "{out}"]  # "{downsample}" is that step's output: pack depends on it
        options: {format: lmdb, crop: true, size: 96, step: 48}

``{out}`` is the step's own output (``out:`` in the step, default ``{workdir}/{name}``), ``{NAME}`` another
step's output (which makes it a dependency), ``{var}`` a variable (``--set vars.NAME=VALUE`` overrides one).
``after: [STEP, ...]`` adds dependencies that no argument names (a step that writes into another's folder).
``replace: true`` deletes the step's output before it reruns with other parameters or inputs (a training
run, which would otherwise continue the old one); after an unfinished attempt the output is kept so that the
command can resume (give a training step ``resume: auto``). Options become ``--name value`` (``True``:
a flag, ``False``: ``--no-name``, a list: the option repeated).

Each step has a fingerprint (command, resolved arguments, the fingerprints of files it reads from outside
the pipeline). A step is up to date when its last successful run had the same fingerprint and its upstream
steps have not run since; then it is skipped without starting the command. Otherwise the command runs, and
its own cache decides what it still has to do (a killed step resumes where it stopped). The pipeline's
state is ``{workdir}/.srprep-pipeline/{name}.json``, updated after every step; ``{name}.lock`` beside it
keeps a second run of the same pipeline out while one runs (:mod:`srprep.lock`).
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import SrprepError
from .fingerprint import fingerprint
from .lock import output_lock
from .runner import write_json_atomic

log = logging.getLogger(__name__)

_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_STEP_KEYS = {"command", "args", "options", "out", "after", "replace", "description"}
_TOP_KEYS = {"name", "description", "workdir", "scheduler", "vars", "steps"}
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


class PipelineError(SrprepError):
    """A pipeline file that cannot run: unknown step or variable, a cycle, a bad key."""


@dataclass
class PipelineStep:
    """One resolved step: the command line it runs and the steps it depends on."""

    name: str
    command: str
    args: list[str]
    options: dict
    out: Path
    needs: list[str] = field(default_factory=list)
    description: str = ""
    replace: bool = False

    def argv(self) -> list[str]:
        """The srprep command line (without the program name)."""
        argv = [self.command]
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if value is None:
                continue
            if value is True:
                argv.append(flag)
            elif value is False:
                argv.append("--no-" + key.replace("_", "-"))
            elif isinstance(value, (list, tuple)):
                for v in value:
                    argv += [flag, str(v)]
            else:
                argv += [flag, str(value)]
        return argv + [str(a) for a in self.args]


@dataclass
class Pipeline:
    """A parsed pipeline: steps in a valid order (every step after the steps it needs)."""

    name: str
    path: Path
    workdir: Path
    scheduler: str | None
    steps: dict[str, PipelineStep]
    description: str = ""

    @property
    def state_path(self) -> Path:
        return self.workdir / ".srprep-pipeline" / f"{self.name}.json"

    def downstream(self, name: str) -> list[str]:
        """``name`` and every step that depends on it, directly or not, in pipeline order."""
        hit = {name}
        for s in self.steps.values():
            if any(n in hit for n in s.needs):
                hit.add(s.name)
        return [n for n in self.steps if n in hit]

    def upstream(self, name: str) -> list[str]:
        """``name`` and every step it depends on, in pipeline order."""
        need, todo = {name}, [name]
        while todo:
            for n in self.steps[todo.pop()].needs:
                if n not in need:
                    need.add(n)
                    todo.append(n)
        return [n for n in self.steps if n in need]


def _substitute(value: Any, table: dict[str, str], where: str, refs: set[str]) -> Any:
    if isinstance(value, str):
        def repl(m: re.Match) -> str:
            key = m.group(1)
            if key not in table:
                raise PipelineError(f"{where}: unknown step or variable {{{key}}}")
            refs.add(key)
            return table[key]
        return _REF.sub(repl, value)
    if isinstance(value, list):
        return [_substitute(v, table, where, refs) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, table, where, refs) for k, v in value.items()}
    return value


def _var_text(value: Any) -> str:
    """A variable's value as text that YAML reads back as the same value (``1.0e-08``, not Python's ``1e-08``,
    which YAML 1.1 reads as a string; ``[0.9, 0.99]``; ``true``): steps pass it on as ``KEY=VALUE`` overrides."""
    if isinstance(value, str):
        return value
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"))
    return text[:-len("\n...\n")] if text.endswith("\n...\n") else text.rstrip("\n")


def _set_override(raw: dict, spec: str) -> None:
    """Apply ``step.option=value`` (value parsed as YAML) to the raw pipeline dict."""
    if "=" not in spec or "." not in spec.split("=", 1)[0]:
        raise PipelineError(f"--set {spec!r}: expected STEP.OPTION=VALUE")
    target, value = spec.split("=", 1)
    step, option = target.split(".", 1)
    if step == "vars":
        raw.setdefault("vars", {})[option] = yaml.safe_load(value)
        return
    steps = raw.get("steps") or {}
    if step not in steps:
        raise PipelineError(f"--set {spec!r}: no step {step!r} (steps: {', '.join(steps)})")
    if option in ("args", "out", "command"):
        steps[step][option] = yaml.safe_load(value)
    else:
        steps[step].setdefault("options", {})[option.replace("-", "_")] = yaml.safe_load(value)


def load_pipeline(path: str | Path, *, workdir: str | Path | None = None, overrides: list[str] = (),
                  scheduler: str | None = None) -> Pipeline:
    """Read and check a pipeline file; resolve references; order the steps.

    Raises:
        PipelineError: unknown keys, unknown references, a cycle, duplicate outputs.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: no such pipeline file") from None
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), dict) or not raw["steps"]:
        raise PipelineError(f"{path}: a pipeline is a mapping with a non-empty 'steps' mapping")
    raw = copy.deepcopy(raw)
    bad = set(raw) - _TOP_KEYS
    if bad:
        raise PipelineError(f"{path}: unknown keys {sorted(bad)} (allowed: {sorted(_TOP_KEYS)})")
    for spec in overrides:
        _set_override(raw, spec)
    name = str(raw.get("name") or path.stem)
    wd = Path(workdir if workdir is not None else raw.get("workdir") or name)
    table = {"workdir": str(wd), "srprep_samples": str(SAMPLES_DIR), "pipeline_dir": str(path.resolve().parent)}
    for key, value in (raw.get("vars") or {}).items():
        table[key] = _substitute(_var_text(value), table, f"{path}: vars.{key}", set())
    steps_raw = raw["steps"]
    for sname, spec in steps_raw.items():
        if sname in table:
            raise PipelineError(f"{path}: step {sname!r} has the name of a variable")
        if not isinstance(spec, dict) or "command" not in spec:
            raise PipelineError(f"{path}: step {sname!r} needs a 'command'")
        bad = set(spec) - _STEP_KEYS
        if bad:
            raise PipelineError(f"{path}: step {sname!r}: unknown keys {sorted(bad)} (allowed: {sorted(_STEP_KEYS)})")
    # An output may name another step's output ("{data}/sr_pretrained"): resolve in as many rounds as needed.
    outs: dict[str, str] = {}
    out_refs: dict[str, set[str]] = {}
    pending = dict(steps_raw)
    while pending:
        progress = False
        for sname, spec in list(pending.items()):
            template = str(spec.get("out", "{workdir}/" + sname))
            names = set(_REF.findall(template))
            if names & set(pending) - {sname}:
                continue
            refs: set[str] = set()
            outs[sname] = _substitute(template, {**table, **outs}, f"{path}: {sname}.out", refs)
            out_refs[sname] = refs & set(steps_raw)
            del pending[sname]
            progress = True
        if not progress:
            raise PipelineError(f"{path}: the outputs of steps {sorted(pending)} refer to each other")
    if len(set(outs.values())) != len(outs):
        raise PipelineError(f"{path}: two steps write to the same output")
    steps = {}
    for sname, spec in steps_raw.items():
        refs: set[str] = set()
        local = {**table, **outs, "out": outs[sname]}
        args = _substitute(list(spec.get("args") or []), local, f"{path}: {sname}.args", refs)
        options = _substitute(dict(spec.get("options") or {}), local, f"{path}: {sname}.options", refs)
        after = spec.get("after") or []
        for a in after:
            if a not in steps_raw:
                raise PipelineError(f"{path}: step {sname!r}: 'after' names no step {a!r}")
        needs = sorted(({r for r in refs if r in steps_raw} | out_refs[sname] | set(after)) - {sname})
        steps[sname] = PipelineStep(sname, str(spec["command"]), args, options, Path(outs[sname]), needs,
                                    str(spec.get("description", "")), bool(spec.get("replace", False)))
    return Pipeline(name, path, wd, scheduler or raw.get("scheduler"), _toposort(steps, path),
                    str(raw.get("description", "")))


def _toposort(steps: dict[str, PipelineStep], path: Path) -> dict[str, PipelineStep]:
    order, state = [], {}

    def visit(n: str, chain: list[str]) -> None:
        if state.get(n) == "done":
            return
        if state.get(n) == "active":
            cycle = chain[chain.index(n):] + [n]
            raise PipelineError(f"{path}: steps form a cycle: {' -> '.join(cycle)}")
        state[n] = "active"
        for m in steps[n].needs:
            visit(m, chain + [n])
        state[n] = "done"
        order.append(n)

    for n in steps:  # file order where dependencies allow
        visit(n, [])
    return {n: steps[n] for n in order}


def _external_inputs(step: PipelineStep, pipe: Pipeline) -> dict:
    """Cheap fingerprints (names, sizes, mtimes) of files and folders the step reads from outside the pipeline."""
    outs = {str(s.out) for s in pipe.steps.values()}
    found = {}
    values = list(step.args) + [v for v in step.options.values() if isinstance(v, str)]
    for v in values:
        p = Path(v)
        if str(p) in outs or not v or "=" in v:
            continue
        if p.is_file():
            st = p.stat()
            found[v] = [st.st_size, st.st_mtime_ns]
        elif p.is_dir():
            found[v] = fingerprint(sorted([c.name, c.stat().st_size, c.stat().st_mtime_ns]
                                          for c in p.iterdir() if c.is_file()))
    return found


@dataclass
class StepOutcome:
    name: str
    status: str  # "up to date" | "ran" | "would run" | "failed"
    reason: str = ""
    elapsed: float = 0.0


def plan(pipe: Pipeline, *, force: list[str] = ()) -> dict[str, tuple[bool, str]]:
    """For each step: (needs to run, why)."""
    state = _read_state(pipe)
    result: dict[str, tuple[bool, str]] = {}
    forced = {d for f in force for d in pipe.downstream(f)}
    for name, step in pipe.steps.items():
        rec = state["steps"].get(name)
        fp = _step_fingerprint(step, pipe)
        if name in forced:
            result[name] = (True, "forced" if name in force else "upstream forced")
        elif rec is None:
            result[name] = (True, "first run")
        elif not rec.get("ok"):
            result[name] = (True, "its last run did not finish")
        elif rec["fp"] != fp:
            result[name] = (True, argv_changes(rec.get("argv"), step.argv()) or "inputs changed")
        elif any(result[n][0] or state["steps"][n]["generation"] != rec["upstream"].get(n) for n in step.needs):
            result[name] = (True, "upstream changed")
        elif not step.out.exists():
            result[name] = (True, "output missing")
        else:
            result[name] = (False, "up to date")
    return result


def argv_changes(old: list[str] | None, new: list[str]) -> str:
    """What differs between two command lines of a step, e.g. ``"--scale 2 -> 3, --im2double added"``.

    Options are ``--name [value]`` (repeated options compare as one list), other words by position; ``--force``
    (added to a forced run) is ignored. Empty when the command lines are the same.

    >>> argv_changes(["downsample", "HR", "out", "--scale", "2"], ["downsample", "HR", "out", "--scale", "3", "--im2double"])
    '--scale 2 -> 3, --im2double added'
    """
    if old is None:
        return "parameters changed"

    def parts(argv):
        out, i, pos = {}, 0, 0
        while i < len(argv):
            word = argv[i]
            if word.startswith("--"):
                value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
                if word != "--force":
                    out.setdefault(word, []).append(value)
                i += 2 if value is not None else 1
            else:
                out[f"argument {pos + 1}"] = [word]
                pos += 1
                i += 1
        return {k: " ".join(v for v in vals if v is not None) for k, vals in out.items()}

    a, b = parts(old), parts(new)
    changes = []
    for k in [*a, *(k for k in b if k not in a)]:
        if k not in b:
            changes.append(f"{k} removed")
        elif k not in a:
            changes.append(f"{k} added" if not b[k] else f"{k} {b[k]} added")
        elif a[k] != b[k]:
            changes.append(f"{k} {a[k]} -> {b[k]}")
    return ", ".join(changes)


def _step_fingerprint(step: PipelineStep, pipe: Pipeline) -> str:
    return fingerprint({"argv": step.argv(), "inputs": _external_inputs(step, pipe)})


def _read_state(pipe: Pipeline) -> dict:
    try:
        return json.loads(pipe.state_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"pipeline": pipe.name, "steps": {}}
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{pipe.state_path}: unreadable pipeline state ({exc}); delete it to start over")


def run_pipeline(pipe: Pipeline, invoke: Callable[[list[str]], None], *, until: str | None = None,
                 only: str | None = None, force: list[str] = (), dry_run: bool = False,
                 on_step: Callable[[StepOutcome], None] | None = None) -> list[StepOutcome]:
    """Run the steps that are not up to date, in order.

    Args:
        invoke: runs one srprep command line (``argv`` without the program name); raises on failure.
        until: stop after this step (run only it and what it needs).
        only: run just this step (its upstream steps must be up to date or it is refused).
        force: steps to redo with ``--force`` (their downstream steps rerun too).
        dry_run: report what would run; run nothing.
        on_step: called with each step's outcome as it is decided/finished (for progress output).
    """
    for n in [until, only, *force]:
        if n is not None and n not in pipe.steps:
            raise PipelineError(f"{pipe.path}: no step {n!r} (steps: {', '.join(pipe.steps)})")
    selected = list(pipe.steps)
    if until:
        selected = pipe.upstream(until)
    if only:
        selected = [only]
    decisions = plan(pipe, force=force)
    if only:
        stale = [n for n in pipe.upstream(only) if n != only and decisions[n][0]]
        if stale and not dry_run:
            raise PipelineError(f"--only {only}: upstream steps are not up to date: {', '.join(stale)}")
    if dry_run:
        return _run_steps(pipe, invoke, selected, decisions, only, force, dry_run, on_step)
    # One pipeline run per workdir and name at a time (each step also locks its own output).
    with output_lock(pipe.state_path.with_suffix(".lock"), f"pipeline {pipe.name} in {pipe.workdir}"):
        return _run_steps(pipe, invoke, selected, decisions, only, force, dry_run, on_step)


def _run_steps(pipe, invoke, selected, decisions, only, force, dry_run, on_step) -> list[StepOutcome]:
    state = _read_state(pipe)
    outcomes = []
    for name in selected:
        step = pipe.steps[name]
        todo, why = decisions[name]
        if only and name == only and not todo:
            todo, why = True, "asked for with --only"
        if not todo:
            outcome = StepOutcome(name, "up to date", why)
        elif dry_run:
            outcome = StepOutcome(name, "would run", why)
        else:
            argv = step.argv()
            if name in force:
                argv = [argv[0], "--force", *argv[1:]]
            t0 = time.perf_counter()
            prev = state["steps"].get(name, {})
            # a finished output is replaced; an unfinished one is resumed
            if step.replace and prev.get("ok") and step.out.exists():
                _replace_output(pipe, step, why)
            state["steps"][name] = {**prev, "ok": False, "started": _now()}
            _write_state(pipe, state)
            invoke(argv)
            elapsed = time.perf_counter() - t0
            state["steps"][name] = {
                "ok": True, "fp": _step_fingerprint(step, pipe), "argv": argv, "out": str(step.out),
                "generation": prev.get("generation", 0) + 1, "started": state["steps"][name]["started"],
                "finished": _now(), "elapsed_s": round(elapsed, 3),
                "upstream": {n: state["steps"][n]["generation"] for n in step.needs},
            }
            _write_state(pipe, state)
            outcome = StepOutcome(name, "ran", why, elapsed)
        outcomes.append(outcome)
        if on_step:
            on_step(outcome)
    return outcomes


def _replace_output(pipe: Pipeline, step: PipelineStep, why: str) -> None:
    out, root = step.out.resolve(), pipe.workdir.resolve()
    if root not in out.parents:
        raise PipelineError(f"step {step.name!r}: replace is only allowed for outputs inside the workdir {root}")
    log.info("%s: removing the previous output %s (%s)", step.name, out, why)
    if out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink()


def _write_state(pipe: Pipeline, state: dict) -> None:
    state["pipeline"] = pipe.name
    state["file"] = str(pipe.path)
    write_json_atomic(pipe.state_path, state)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def graph_text(pipe: Pipeline) -> str:
    """The pipeline as text: one line per step with what it needs and where it writes."""
    lines = [f"{pipe.name}: {len(pipe.steps)} steps -> {pipe.workdir}"]
    for s in pipe.steps.values():
        needs = f" <- {', '.join(s.needs)}" if s.needs else ""
        lines.append(f"  {s.name} [{s.command}]{needs}  => {s.out}")
    return "\n".join(lines)
