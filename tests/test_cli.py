"""The command line: help, version, errors as one line, modcrop end to end, status, resume after kill."""
import re
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest

from srprep import __version__
from srprep.cli import main
from srprep.io.images import read_image, write_image

REPO = Path(__file__).resolve().parents[1]


def srprep(*args, check=True):
    """Run the real console entry point in a subprocess; return (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "srprep", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def test_help_lists_every_command_with_a_purpose():
    _, out, _ = srprep("--help")
    for cmd in ("modcrop", "status"):
        line = next(line for line in out.splitlines() if line.strip().startswith(cmd))
        assert len(line.split()) > 2, f"{cmd} has no one-line purpose in --help"


def test_version():
    assert srprep("--version")[1].strip().endswith(__version__)


def test_modcrop_end_to_end_is_cached(samples, tmp_path, capsys):
    dst = tmp_path / "mod3"
    assert main(["modcrop", samples / "set5", dst, "--scale", "3", "--jobs", "1"]) == 0
    assert "5 items, 5 processed" in capsys.readouterr().out
    woman = read_image(dst / "woman.png")
    assert woman.shape == (342, 228, 3)
    np.testing.assert_array_equal(woman, read_image(samples / "set5/woman.png")[:342, :228])
    assert main(["modcrop", samples / "set5", dst, "--scale", "3"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["status", tmp_path]) == 0
    out = capsys.readouterr().out
    assert "modcrop complete" in out
    assert "\n    png_level 1  scale 3\n" in out and "{" not in out  # name value pairs, not JSON


def test_errors_are_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "src"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code, _, err = srprep("modcrop", bad, tmp_path / "dst", "--scale", "2", check=False)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "broken.png" in lines[0]
    assert "Traceback" not in err
    code, _, err = srprep("--verbose", "modcrop", bad, tmp_path / "dst", "--scale", "2", check=False)
    assert code == 1 and "Traceback" in err


@pytest.mark.parametrize("raised", [KeyboardInterrupt, click.exceptions.Abort])
def test_ctrl_c_says_how_to_resume(samples, tmp_path, monkeypatch, capsys, raised):
    import srprep.cli.modcrop as modcrop_cli

    def interrupted(*args, **kwargs):
        raise raised()

    monkeypatch.setattr(modcrop_cli, "modcrop", interrupted)
    assert main(["modcrop", samples / "set5", tmp_path / "out", "--scale", "2"]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    monkeypatch.setattr("srprep.train.train", interrupted)
    assert main(["train", "-c", REPO / "srprep/configs/tiny_cpu.yaml", "--run-dir", tmp_path / "run"]) == 130
    assert "same command and --resume auto" in capsys.readouterr().err


def test_image_smaller_than_scale(tmp_path):
    write_image(tmp_path / "src/tiny.png", np.zeros((2, 5, 3), np.uint8))
    code, _, err = srprep("modcrop", tmp_path / "src", tmp_path / "dst", "--scale", "3", check=False)
    assert code == 1 and "tiny.png" in err and "smaller than the scale 3" in err


def test_dry_run_writes_nothing(samples, tmp_path):
    _, out, _ = srprep("modcrop", samples / "set5", tmp_path / "dst", "-s", "2", "--dry-run")
    assert "would process 5 of 5" in out
    assert not (tmp_path / "dst").exists()


def test_bad_option_is_a_usage_error():
    code, _, err = srprep("modcrop", "x", "y", "--scale", "0", check=False)
    assert code == 2 and "scale" in err


def test_modcrop_killed_half_way_resumes_to_identical_outputs(tmp_path, rng, kill_when):
    src = tmp_path / "src"
    for i in range(24):
        write_image(src / f"img{i:02d}.png", rng.integers(0, 256, (301, 403, 3), dtype=np.uint8))
    dst = tmp_path / "dst"
    done_before = kill_when([sys.executable, "-m", "srprep", "-q", "modcrop", src, dst, "-s", "4", "-j", "1",
                             "--png-level", "9"], dst, "*.png", 6, step="modcrop", cwd=REPO)
    assert done_before == 6
    _, out, _ = srprep("modcrop", src, dst, "-s", "4", "-j", "2", "--png-level", "9")
    m = re.search(r"24 items, (\d+) processed, (\d+) reused", out)
    assert m, out
    processed, reused = map(int, m.groups())
    assert (processed, reused) == (18, 6)
    assert sorted(p.name for p in dst.glob("*.png")) == [f"img{i:02d}.png" for i in range(24)]
    assert not [p for p in dst.iterdir() if p.name.startswith(".") and p.name != ".srprep"]
    for i in range(24):
        np.testing.assert_array_equal(read_image(dst / f"img{i:02d}.png"),
                                      read_image(src / f"img{i:02d}.png")[:300, :400])


def tree(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_modcrop_into_its_own_input_is_refused_and_leaves_it_untouched(samples, tmp_path):
    same = tmp_path / "same"
    same.mkdir()
    for p in (samples / "set5").glob("*.png"):
        (same / p.name).write_bytes(p.read_bytes())
    before = tree(same)
    for dst in (same, same / "mod", tmp_path):
        code, _, err = srprep("modcrop", same, dst, "--scale", "3", check=False)
        assert code == 1 and err.count("\n") == 1, err
        assert re.search(r"the output of modcrop (is|lies inside|contains) its input .*same; choose a destination "
                         r"outside the inputs", err), err
    assert tree(same) == before and not (same / ".srprep").exists()


def test_exif_orientation_is_said_in_help_ignored_by_default_and_applied_on_request(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: viewers rotate it 90 degrees clockwise
    (tmp_path / "photos").mkdir()
    Image.fromarray(pixels).save(tmp_path / "photos/p.png", exif=exif.tobytes())
    for cmd in ("modcrop", "downsample"):
        _, out, _ = srprep(cmd, "--help")
        assert "--exif-orientation" in out and "ignore" in out and "apply" in out
    srprep("modcrop", tmp_path / "photos", tmp_path / "stored", "--scale", "1", "-j", "1")
    np.testing.assert_array_equal(read_image(tmp_path / "stored/p.png"), pixels)
    srprep("modcrop", tmp_path / "photos", tmp_path / "upright", "--scale", "1", "-j", "1", "--exif-orientation",
           "apply")
    np.testing.assert_array_equal(read_image(tmp_path / "upright/p.png"), np.rot90(pixels, -1))
    srprep("downsample", tmp_path / "photos", tmp_path / "data", "--scale", "2", "-j", "1", "--exif-orientation",
           "apply")
    np.testing.assert_array_equal(read_image(tmp_path / "data/HR/p.png"), np.rot90(pixels, -1))
    assert read_image(tmp_path / "data/X2/px2.png").shape == (7, 5, 3)


def test_a_damaged_png_is_one_line_with_no_libpng_noise_before_it(samples, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for p in (samples / "set5").glob("*.png"):
        (src / p.name).write_bytes(p.read_bytes())
    data = bytearray((src / "bird.png").read_bytes())
    data[data.find(b"IDAT") + 100] ^= 0xFF  # libpng: "bad adaptive filter value" on stderr, then a failure
    (src / "bird.png").write_bytes(bytes(data))
    for jobs in ("1", "2"):
        code, _, err = srprep("modcrop", src, tmp_path / f"out{jobs}", "--scale", "2", "-j", jobs, check=False)
        assert code == 1
        assert err == f"error: modcrop: item 'bird' failed: {src / 'bird.png'}: corrupt PNG (chunk IDAT does not " \
                      f"match its CRC)\n", err
