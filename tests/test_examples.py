"""Every example command in the --help texts and in README.md: each one parses (its command, options and
values exist), each pipeline it names loads with its --set overrides, and each one whose data is here runs.

The examples run, in the order they are written (README first), in one folder holding small real data under
the names they use: Set5 (tests/data), two bundled Kodak crops as DIV2K_train_HR and their x2/x4 LR as DIV2K,
the IMDN x2 weights, and ``srprep/`` for the bundled samples and ``examples/``; each in a process of its own,
as typed in a shell. Pipelines run as dry runs (the quickstart itself runs in test_pipeline.py) and training examples for a
few iterations; an example that needs a cluster only parses.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from srprep.cli import cli, main
from srprep.cli.stepcheck import parse_args

REPO = Path(__file__).resolve().parents[1]


def _help_examples() -> list[tuple[str, str]]:
    found = []

    def walk(command, path):
        block = False
        # a line ending in a backslash continues on the next, as in a shell
        for line in (command.help or "").replace("\\\n", " ").splitlines():
            if re.match(r"\s*Examples?(\s*\(.*\))?:", line):
                block = True
            elif not line.strip():
                block = False
            elif block:
                found.append((f"srprep {' '.join(path)} --help".replace("  ", " "), line.strip()))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, path + [name])

    walk(cli, [])
    return found


def _readme_examples() -> list[tuple[str, str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    # a line ending in a backslash continues on the next, as in a shell
    return [("README.md", line.strip()) for block in blocks for line in block.replace("\\\n", " ").splitlines()]


def _commands(line: str) -> list[list[str]]:
    """The srprep command lines in one example line (``a && b``; ``torchrun ... -m srprep ...``), comments
    dropped; argv without the program name."""
    found = []
    for part in line.split("&&"):
        words = shlex.split(part, comments=True)
        if words[:1] == ["srprep"]:
            found.append(words[1:])
        elif "-m" in words and words[words.index("-m") + 1:][:1] == ["srprep"]:
            found.append(words[words.index("-m") + 2:])
    return found


EXAMPLES = [(where, argv) for where, line in _readme_examples() + _help_examples() for argv in _commands(line)]


def test_the_examples_are_found():
    where = {w for w, _ in EXAMPLES}
    assert len(EXAMPLES) > 40 and "README.md" in where and "srprep run --help" in where
    assert ["run", "quickstart", "--dry-run", "--set", "data.scale=[3]"] in [a for _, a in EXAMPLES]


@pytest.mark.parametrize("where, argv", EXAMPLES, ids=[" ".join(a)[:60] for _, a in EXAMPLES])
def test_every_example_parses(where, argv):
    try:
        parse_args(cli, argv)
    except click.UsageError as exc:
        pytest.fail(f"{where}: srprep {shlex.join(argv)}: {exc.format_message()}")


def _sandbox(root: Path, ref_data: Path) -> None:
    (root / "srprep").symlink_to(REPO / "srprep")
    (root / "examples").symlink_to(REPO / "examples")  # a network of your own, as in a checkout
    for name in ("bird", "head"):
        (root / "HR").mkdir(exist_ok=True)
        shutil.copy(REPO / f"srprep/samples/set5/{name}.png", root / "HR")
    shutil.copytree(ref_data / "benchmark/Set5", root / "Set5")
    shutil.copytree(ref_data / "benchmark/Set5", root / "benchmark/Set5")
    (root / "DIV2K_train_HR").mkdir()
    for name in ("kodim03", "kodim05"):
        shutil.copy(REPO / f"srprep/samples/kodak/{name}.png", root / "DIV2K_train_HR" / f"0{name[-2:]}1.png")
    assert main(["-q", "downsample", "DIV2K_train_HR", "DIV2K", "-s", "2", "-s", "4", "-j", "1"]) == 0
    shutil.copy(ref_data / "weights/IMDN_x2.pth", root / "IMDN_x2.pth")


def _has_data(argv: list[str]) -> bool:
    """Whether the files and folders the command reads are here (and, for training, its data)."""
    ctx, found = parse_args(cli, argv)
    for _, value, kind in found:
        if isinstance(kind, click.Path):
            if kind.exists and not Path(value).exists():
                return False
        else:  # a file, or the name of a shipped one
            try:
                kind.convert(value, None, None)
            except click.BadParameter:
                return False
    if ctx.command.name == "train" and not ctx.params.get("plot_eco"):
        from srprep.shipped import find_file
        from srprep.train.config import load_config

        if ctx.params.get("config_path") is None:
            return False
        cfg = load_config(find_file(ctx.params["config_path"], "config"), list(ctx.params["overrides"]))
        return Path(cfg.data.root).exists() and (cfg.val.root is None or Path(cfg.val.root).exists())
    return True


@pytest.mark.slow
def test_every_example_with_its_data_runs(tmp_path, ref_data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _sandbox(tmp_path, ref_data)
    ran, no_data = [], []
    for where, argv in EXAMPLES:
        name = parse_args(cli, argv)[0].command.name
        if "--scheduler" in argv:
            no_data.append(argv)  # needs a cluster at that address: parsed only
            continue
        if name == "run":
            argv = [*argv, "--dry-run"] if "--dry-run" not in argv else argv
        elif name == "train" and "-c" in argv:
            argv = [*argv, "train.iters=4", "val.every=2", "train.log_every=2", "train.ckpt_every=4"]
        if name != "run" and not _has_data(argv):
            no_data.append(argv)
            continue
        # as a user runs it: a process of its own, started here (worker processes of this one may be older than
        # the chdir above and look for relative paths elsewhere)
        out = subprocess.run([sys.executable, "-m", "srprep", *argv], capture_output=True, text=True, timeout=1800,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        code = out.returncode
        if name == "run" and code == 1 and "input(s) missing" in out.stderr:
            no_data.append(argv)  # the pipeline loaded and was checked; its data is elsewhere
            continue
        named = re.search(r"^error: ([^:]+): no such file", out.stderr, re.M)
        if code == 1 and named and named.group(1) in argv and not Path(named.group(1)).exists():
            no_data.append(argv)  # an input the command looks for itself (a store may be FILE.h5/FIELD)
            continue
        assert code == 0, f"{where}: srprep {shlex.join(argv)}\n{out.stderr}"
        ran.append(argv)
    # the README's own sequence and most help examples run here; what does not needs data we do not have
    print(f"{len(ran)} examples ran, {len(no_data)} need data that is not here:",
          *(shlex.join(a) for a in no_data), sep="\n  ")
    assert len(ran) >= 25
    assert {"modcrop", "downsample", "pack", "inspect", "eval", "crop", "status", "train", "run"} <= {
        parse_args(cli, a)[0].command.name for a in ran}
