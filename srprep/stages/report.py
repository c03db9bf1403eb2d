"""``srprep report``: one Markdown page per pipeline run — each step, its parameters, counts, timings, and
the pictures (contact sheets, curves) and tables (validation, evaluation) the steps produced."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from ..errors import StoreError
from ..fingerprint import canonical_json
from ..runner import find_step_outputs, step_status

STATE_DIR = ".srprep-pipeline"
_MAX_PICTURES = 6


def _rel(path: Path, base: Path) -> str:
    return os.path.relpath(path, base).replace(os.sep, "/")


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |")
    return out


def _fmt(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return str(v) if f.is_integer() and "." not in str(v) else f"{f:.4f}"


def _step_section(name: str, rec: dict, base: Path) -> list[str]:
    lines = [f"## {name}", ""]
    if rec.get("argv"):
        lines += ["```", "srprep " + " ".join(rec["argv"]), "```", ""]
    status = "ok" if rec.get("ok") else "not finished"
    lines.append(f"status **{status}**, started {rec.get('started', '?')}, "
                 f"{rec.get('elapsed_s', '?')} s, output `{rec.get('out', '?')}`")
    lines.append("")
    out = Path(rec.get("out", ""))
    if not out.exists():
        return lines
    if out.is_file() and out.suffix == ".csv":
        rows = _csv_rows(out)
        if rows:
            lines += _table(rows, list(rows[0])) + [""]
        return lines
    # cached sub-steps (each output folder with a manifest)
    for state in find_step_outputs(out, max_depth=2):
        st = step_status(state)
        done = "complete" if st["complete"] else f"incomplete ({st['done']} of {st['total']})"
        lines.append(f"- `{_rel(state.parent, base)}`: {st['step']} {done}, {st['done']} items, "
                     f"params `{canonical_json(st['params']) if st['params'] is not None else '?'}`")
    # a training run
    val = out / "val.csv"
    if val.is_file():
        rows = _csv_rows(val)
        if rows:
            last = rows[-1]
            lines.append(f"- validation: best PSNR {_fmt(last.get('best_psnr'))} dB, last "
                         f"{_fmt(last.get('psnr'))} dB at step {last.get('step')}, bicubic "
                         f"{_fmt(last.get('bicubic_psnr'))} dB")
    lines.append("")
    # pictures a step drew for people (contact sheets, curves, previews) sit at the top of its output;
    # the data images are one folder down
    # (a folder with its own step state is a data store: its images are data, not pictures)
    pictures = [] if (out / ".srprep").is_dir() else sorted(
        p for p in out.glob("*.png") if p.stat().st_size < 20 << 20)[:_MAX_PICTURES]
    for p in pictures:
        lines += [f"![{p.name}]({_rel(p, base)})", ""]
    return lines


def pipeline_report(run_dir: str | Path, *, out: str | Path | None = None) -> list[Path]:
    """Write ``report.md`` (or ``out``) for every pipeline run recorded under ``run_dir``.

    Returns the paths written. Raises StoreError if ``run_dir`` holds no pipeline state.
    """
    run_dir = Path(run_dir)
    states = sorted((run_dir / STATE_DIR).glob("*.json")) if (run_dir / STATE_DIR).is_dir() else []
    if not states:
        raise StoreError(f"{run_dir}: no pipeline run here (expected {STATE_DIR}/<name>.json; "
                         "run `srprep run PIPELINE --workdir DIR` first)")
    written = []
    for state_path in states:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        target = Path(out) if out is not None else run_dir / (
            "report.md" if len(states) == 1 else f"report_{state_path.stem}.md")
        base = target.parent
        # in the order they ran (the state file keeps keys sorted by name)
        steps = dict(sorted(state.get("steps", {}).items(), key=lambda kv: kv[1].get("started", "")))
        lines = [f"# Pipeline {state.get('pipeline', state_path.stem)}", "",
                 f"file `{state.get('file', '?')}`, run folder `{run_dir}`", "",
                 "| step | command | status | started | seconds |", "|---|---|---|---|---|"]
        for name, rec in steps.items():
            cmd = rec.get("argv", ["?"])[0]
            lines.append(f"| {name} | {cmd} | {'ok' if rec.get('ok') else 'not finished'} | "
                         f"{rec.get('started', '')} | {rec.get('elapsed_s', '')} |")
        lines.append("")
        for name, rec in steps.items():
            lines += _step_section(name, rec, base)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        written.append(target)
    return written
