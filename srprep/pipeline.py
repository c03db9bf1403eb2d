"""Pipelines: chains of srprep commands in one YAML file, cached step by step.

A pipeline file::

    name: quickstart
    workdir: quickstart                 # where step outputs go (relative to the current directory)
    scheduler: null                     # or tcp://host:8786: data steps run on a Dask cluster
    vars:
      samples: "{srprep_samples}"       # built in: the images bundled with srprep
      configs: "{srprep_configs}"       # built in: the training configs shipped with srprep
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
Built in: ``{workdir}``, ``{pipeline_dir}`` (the folder of the pipeline file), ``{srprep_samples}`` and
``{srprep_configs}`` (the sample images and training configs inside the installed package).
``after: [STEP, ...]`` adds dependencies that no argument names (a step that writes into another's folder).
``replace: true`` deletes the step's output before it reruns with other parameters or inputs (a training
run, which would otherwise continue the old one); after an unfinished attempt the output is kept so that the
command can resume (give a training step ``resume: auto``). Options become ``--name value`` (``True``:
a flag, ``False``: ``--no-name``, a list: the option repeated).

The whole file is checked before anything runs (types of every key, references, cycles, outputs; with the
command line's ``check_step``, every option and argument against the command it is given to), and each error
is one line naming the step and the key. Before a run (and in a dry run) every file or folder a step reads
from outside the pipeline must exist; a missing one is named with the variable that set it.

Each step has a fingerprint (command, resolved arguments, the fingerprints of files it reads from outside
the pipeline; a folder's fingerprint covers every file under it). A step is up to date when its last
successful run had the same fingerprint and its upstream steps have not run since; then it is skipped without
starting the command. Otherwise the command runs, and its own cache decides what it still has to do (a killed
step resumes where it stopped). The pipeline's state is ``{workdir}/.srprep-pipeline/{name}.json``, updated
after every step; ``{name}.lock`` beside it keeps a second run of the same pipeline out while one runs
(:mod:`srprep.lock`).
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Sequence

import yaml

from . import shipped
from .errors import SrprepError
from .fingerprint import fingerprint
from .lock import output_lock
from .runner import write_json_atomic

log = logging.getLogger(__name__)

_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_STEP_KEYS = {"command", "args", "options", "out", "after", "replace", "description"}
_TOP_KEYS = {"name", "description", "workdir", "scheduler", "vars", "steps"}


class PipelineError(SrprepError):
    """A pipeline file that cannot run: unknown step or variable, a cycle, a bad key."""


@dataclass(frozen=True)
class StepInput:
    """A file or folder a step's command reads: ``where`` in the step it comes from (``options.model``,
    ``args (SRC)``), its path, and how to tell that it is there."""

    where: str
    path: str
    exists: Callable[[str], bool] = os.path.exists


@dataclass
class PipelineStep:
    """One resolved step: the command line it runs, the steps it depends on, the inputs it reads."""

    name: str
    command: str
    args: list[str]
    options: dict
    out: Path
    needs: list[str] = field(default_factory=list)
    description: str = ""
    replace: bool = False
    inputs: list[StepInput] = field(default_factory=list)

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
    vars: dict[str, str] = field(default_factory=dict)  # the file's variables, resolved

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
    which YAML 1.1 reads as a string; ``true``, not ``True``): steps pass it on as ``KEY=VALUE`` overrides."""
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
        known = raw.get("vars") if isinstance(raw.get("vars"), dict) else {}
        if option not in known:
            raise PipelineError(f"--set {spec!r}: no variable {option!r} (variables: {', '.join(known) or 'none'})")
        raw["vars"][option] = yaml.safe_load(value)
        return
    steps = raw.get("steps") or {}
    if step not in steps:
        raise PipelineError(f"--set {spec!r}: no step {step!r} (steps: {', '.join(steps)})")
    if not isinstance(steps[step], dict):
        return  # reported by the checks that follow
    if option in ("args", "out", "command"):
        steps[step][option] = yaml.safe_load(value)
    elif isinstance(steps[step].setdefault("options", {}), dict):
        steps[step]["options"][option.replace("-", "_")] = yaml.safe_load(value)


_SCALAR = (str, int, float, bool)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
            type(None): "empty"}.get(type(value), type(value).__name__)


def _check_types(raw: dict, path: Path) -> None:
    """Every key of the file has the type it needs (one-line errors naming the step and the key)."""
    def need(ok: bool, where: str, what: str, value: Any) -> None:
        if not ok:
            raise PipelineError(f"{path}: {where} must be {what}, not {_kind(value)}")

    for key in ("name", "workdir", "description"):
        if key in raw:
            need(isinstance(raw[key], str) and raw[key] != "", key, "a non-empty string", raw[key])
    if "name" in raw and not re.fullmatch(r"[\w.-]+", raw["name"]):
        raise PipelineError(f"{path}: name {raw['name']!r}: use letters, digits, '_', '-' and '.' (it names a file)")
    if raw.get("scheduler") is not None:
        need(isinstance(raw["scheduler"], str), "scheduler", "an address such as tcp://host:8786", raw["scheduler"])
    variables = raw.get("vars")
    need(variables is None or isinstance(variables, dict), "vars", "a mapping (name: value)", variables)
    for key, value in (variables or {}).items():
        need(isinstance(value, _SCALAR), f"vars.{key}", "a string or a number", value)
    for name, spec in raw["steps"].items():
        if not isinstance(name, str) or not _REF.fullmatch("{" + name + "}"):
            raise PipelineError(f"{path}: step name {name!r}: use letters, digits and '_' (it is used as {{name}})")
        where = f"step {name!r}:"
        need(isinstance(spec, dict), f"step {name!r}", "a mapping with a 'command'", spec)
        if "command" not in spec:
            raise PipelineError(f"{path}: step {name!r} needs a 'command'")
        bad = set(spec) - _STEP_KEYS
        if bad:
            raise PipelineError(f"{path}: step {name!r}: unknown keys {sorted(bad)} (allowed: {sorted(_STEP_KEYS)})")
        need(isinstance(spec["command"], str), f"{where} command", "a string (an srprep command)", spec["command"])
        for key in ("out", "description"):
            if key in spec:
                need(isinstance(spec[key], str), f"{where} {key}", "a string", spec[key])
        if "replace" in spec:
            need(isinstance(spec["replace"], bool), f"{where} replace", "true or false", spec["replace"])
        args = spec.get("args", [])
        need(isinstance(args, list), f"{where} args", 'a list (args: ["{in}", "{out}"])', args)
        for i, value in enumerate(args):
            need(isinstance(value, _SCALAR), f"{where} args[{i}]", "a string or a number", value)
        options = spec.get("options", {})
        need(isinstance(options, dict), f"{where} options", "a mapping (options: {name: value})", options)
        for key, value in options.items():
            ok = value is None or isinstance(value, _SCALAR) or (
                isinstance(value, list) and all(isinstance(v, _SCALAR) for v in value))
            need(ok, f"{where} options.{key}", "a value or a list of values", value)
        after = spec.get("after", [])
        need(isinstance(after, list) and all(isinstance(a, str) for a in after), f"{where} after",
             "a list of step names", after)


def _norm(path: str | os.PathLike) -> str:
    """A path as a comparable absolute string: ``x``, ``./x/`` and ``$PWD/x`` are one folder."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def load_pipeline(path: str | Path, *, workdir: str | Path | None = None, overrides: list[str] = (),
                  scheduler: str | None = None,
                  check_step: Callable[[PipelineStep], list[StepInput]] | None = None) -> Pipeline:
    """Read and check a whole pipeline file; resolve references; order the steps.

    ``check_step(step)`` (the command line passes one) checks a step's options and arguments against its
    command and returns the inputs the command reads; it raises :class:`PipelineError` with a message that
    starts with the key (``options.scael: ...``), which gets the file and step put in front.

    Raises:
        PipelineError: unknown keys, keys of the wrong type, unknown references, a cycle, two steps with one
        output, anything ``check_step`` refuses.
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
    _check_types(raw, path)
    name = raw.get("name") or path.stem
    wd = Path(workdir if workdir is not None else raw.get("workdir") or name)
    table = {"workdir": str(wd), "srprep_samples": str(shipped.SAMPLES), "srprep_configs": str(shipped.CONFIGS),
             "pipeline_dir": str(path.resolve().parent)}
    for key, value in (raw.get("vars") or {}).items():
        table[key] = _substitute(_var_text(value), table, f"{path}: vars.{key}", set())
    variables = {key: table[key] for key in raw.get("vars") or {}}
    steps_raw = raw["steps"]
    for sname in steps_raw:
        if sname in table:
            raise PipelineError(f"{path}: step {sname!r} has the name of a variable")
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
    owner: dict[str, str] = {}
    for sname, out in outs.items():
        other = owner.setdefault(_norm(out), sname)
        if other != sname:
            raise PipelineError(f"{path}: steps {other!r} and {sname!r} write to the same output {out}")
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
        steps[sname] = PipelineStep(sname, spec["command"], args, options, Path(outs[sname]), needs,
                                    spec.get("description", ""), spec.get("replace", False))
        if check_step is not None:
            try:
                steps[sname].inputs = check_step(steps[sname])
            except PipelineError as exc:
                raise PipelineError(f"{path}: step {sname!r}: {exc}") from None
    return Pipeline(name, path, wd, scheduler or raw.get("scheduler"), _toposort(steps, path),
                    raw.get("description", ""), variables)


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


def _folder_listing(folder: Path) -> list:
    """(relative path, size, mtime) of every file under ``folder``, hidden names (srprep's state, temporary
    files) left out: a changed, added or removed image anywhere in a dataset folder changes it."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if fname.startswith("."):
                continue
            full = os.path.join(dirpath, fname)
            try:
                st = os.stat(full)
            except FileNotFoundError:  # a dangling link
                continue
            found.append([os.path.relpath(full, folder), st.st_size, st.st_mtime_ns])
    return found


def _external_inputs(step: PipelineStep, pipe: Pipeline) -> dict:
    """Cheap fingerprints (names, sizes, mtimes) of files and folders the step reads from outside the pipeline:
    every argument and option value that names one (also after ``KEY=`` and in lists), not inside any step's
    output."""
    outs = [_norm(s.out) for s in pipe.steps.values()]
    values = list(step.args)
    for v in step.options.values():
        values += v if isinstance(v, list) else [v]
    found = {}
    for v in values:
        if not isinstance(v, str) or not v:
            continue
        candidate = v.split("=", 1)[1] if "=" in v else v
        if not candidate or any(_inside(_norm(candidate), o) for o in outs):
            continue
        p = Path(candidate)
        if p.is_file():
            st = p.stat()
            found[v] = [st.st_size, st.st_mtime_ns]
        elif p.is_dir():
            found[v] = fingerprint(_folder_listing(p))
    return found


def missing_inputs(pipe: Pipeline, names: Sequence[str] | None = None) -> list[str]:
    """One line per input of the steps ``names`` (default: all) that is not there and that no step makes,
    naming the step, the key, and the variables (``vars.X``) that set it."""
    outs = [_norm(s.out) for s in pipe.steps.values()]
    problems = []
    for name in names if names is not None else pipe.steps:
        for inp in pipe.steps[name].inputs:
            path = _norm(inp.path)
            if any(_inside(path, o) for o in outs) or inp.exists(inp.path):
                continue
            via = [f"vars.{k}" for k, v in pipe.vars.items() if v and _inside(path, _norm(v))]
            hint = f" (from {', '.join(via)}: --set {via[0]}=PATH)" if via else ""
            problems.append(f"step {name!r}: {inp.where}: {inp.path} not found{hint}")
    return problems


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

    >>> argv_changes(["downsample", "HR", "out", "--scale", "2"],
    ...              ["downsample", "HR", "out", "--scale", "3", "--im2double"])
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


def selected_steps(pipe: Pipeline, *, until: str | None = None, only: str | None = None) -> list[str]:
    """The steps a run covers: all; ``until``: that step and what it needs; ``only``: that step."""
    for n in (until, only):
        if n is not None and n not in pipe.steps:
            raise PipelineError(f"{pipe.path}: no step {n!r} (steps: {', '.join(pipe.steps)})")
    if only:
        return [only]
    return pipe.upstream(until) if until else list(pipe.steps)


def run_pipeline(pipe: Pipeline, invoke: Callable[[list[str]], None], *, until: str | None = None,
                 only: str | None = None, force: list[str] = (), dry_run: bool = False,
                 on_step: Callable[[StepOutcome], None] | None = None,
                 takes_force: Collection[str] | None = None) -> list[StepOutcome]:
    """Run the steps that are not up to date, in order.

    Args:
        invoke: runs one srprep command line (``argv`` without the program name); raises on failure.
        until: stop after this step (run only it and what it needs).
        only: run just this step (its upstream steps must be up to date or it is refused).
        force: steps to redo with ``--force`` (their downstream steps rerun too). A step whose command has
            no ``--force`` (``train``, ``eval``; see ``takes_force``) is redone from nothing instead: its
            previous output is removed first, which is allowed only inside the workdir.
        dry_run: report what would run; run nothing (a real run first checks that every input of the steps it
            covers exists: :func:`missing_inputs`).
        on_step: called with each step's outcome as it is decided/finished (for progress output).
        takes_force: the commands that take ``--force`` (None: all of them).
    """
    for n in force:
        if n not in pipe.steps:
            raise PipelineError(f"{pipe.path}: no step {n!r} (steps: {', '.join(pipe.steps)})")
    selected = selected_steps(pipe, until=until, only=only)
    missing = missing_inputs(pipe, selected)
    if missing and not dry_run:
        more = f" (and {len(missing) - 1} more; --dry-run lists them)" if len(missing) > 1 else ""
        raise PipelineError(f"{pipe.path}: {missing[0]}{more}")
    decisions = plan(pipe, force=force)
    if only:
        stale = [n for n in pipe.upstream(only) if n != only and decisions[n][0]]
        if stale and not dry_run:
            raise PipelineError(f"--only {only}: upstream steps are not up to date: {', '.join(stale)}")
    if dry_run:
        return _run_steps(pipe, invoke, selected, decisions, only, force, dry_run, on_step, takes_force)
    # One pipeline run per workdir and name at a time (each step also locks its own output).
    with output_lock(pipe.state_path.with_suffix(".lock"), f"pipeline {pipe.name} in {pipe.workdir}"):
        return _run_steps(pipe, invoke, selected, decisions, only, force, dry_run, on_step, takes_force)


def _run_steps(pipe, invoke, selected, decisions, only, force, dry_run, on_step, takes_force) -> list[StepOutcome]:
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
            redo = name in force and takes_force is not None and step.command not in takes_force
            if name in force and not redo:
                argv = [argv[0], "--force", *argv[1:]]
            t0 = time.perf_counter()
            prev = state["steps"].get(name, {})
            # a finished output is replaced; an unfinished one is resumed
            if step.out.exists() and (redo or (step.replace and prev.get("ok"))):
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
        raise PipelineError(f"step {step.name!r}: its output {out} is outside the workdir {root}: srprep removes "
                            f"a step's output (replace: true, or --force of a command without --force) only "
                            f"inside the workdir; remove it yourself")
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
