"""The command line starts without torch, and the data steps that never run a network never import it (torch
costs seconds to import, more than a cached rerun's whole work)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_help_and_every_command_module_start_without_torch():
    out = _run("import sys, contextlib, io\n"
               "from srprep.cli import cli, main\n"
               "with contextlib.redirect_stdout(io.StringIO()):\n"
               "    assert main(['--help']) == 0\n"
               "    for cmd in sorted(cli.commands):\n"
               "        assert main([cmd, '--help']) == 0, cmd\n"
               "print(len(cli.commands), 'torch' in sys.modules)")
    assert out.split()[1] == "False" and int(out.split()[0]) >= 20, out


def test_data_steps_without_a_network_never_import_torch(samples, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for p in sorted((samples / "set5").glob("*.png"))[:2]:
        (src / p.name).write_bytes(p.read_bytes())
    steps = [["downsample", str(src), str(tmp_path / "d"), "-s", "2", "-s", "4"],
             ["crop", str(tmp_path / "d" / "HR"), "--lr", str(tmp_path / "d" / "X2"), str(tmp_path / "c"),
              "--size", "96", "--step", "48"],
             ["pack", str(tmp_path / "d"), str(tmp_path / "p")],
             ["degrade", str(src), str(tmp_path / "r"), "--recipe", "reflash"],
             ["downsample", str(src), str(tmp_path / "d"), "-s", "2", "-s", "4"]]  # the cached rerun
    code = ("import sys\nfrom srprep.cli import main\n"
            f"for args in {steps!r}:\n"
            "    assert main(['-q', *args, '-j', '1']) == 0, args\n"
            "print('torch' in sys.modules)")
    assert _run(code) == "False"
