"""srprep enlarge: x3 pairs into x2 pairs (HR to 2*(H//3) x 2*(W//3), LR byte-identical), key renaming, merge
with the x2 set and its collisions, size mismatches named, cache, command line."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srprep.cli import main
from srprep.errors import StoreError
from srprep.io.images import read_image, write_image
from srprep.io.stores import FolderStore
from srprep.ops.imresize import imresize_matlab
from srprep.ops.pil_resize import pil_resize
from srprep.stages.enlarge import enlarge, enlarged_size, resize_hr
from srprep.stages.pairs import find_pair
from tests.plain_pillow import plain_pillow_resize

REPO = Path(__file__).resolve().parents[2]
# HR sizes: multiples of 3 and not (the HR is then cropped to a multiple of 3 before the resize).
SIZES = [(300, 450), (301, 452), (302, 449), (240, 360)]


@pytest.fixture(scope="module")
def sets(samples, tmp_path_factory):
    """An x3 set (4 Kodak crops) and an x2 set (3 other crops), AIM layout, LR by MATLAB bicubic."""
    root = tmp_path_factory.mktemp("aim")
    kodak = [read_image(p) for p in sorted((samples / "kodak").glob("*.png"))]
    for i, (h, w) in enumerate(SIZES):
        hr = np.ascontiguousarray(kodak[i][:h, :w])
        write_image(root / f"X3/HR/{i:06d}.png", hr)
        write_image(root / f"X3/LR/{i:06d}.png", imresize_matlab(hr[: h // 3 * 3, : w // 3 * 3], 1 / 3))
    for i in range(3):
        hr = np.ascontiguousarray(kodak[4 + i][:200, :300])
        write_image(root / f"X2/HR/{i:06d}.png", hr)
        write_image(root / f"X2/LR/{i:06d}.png", imresize_matlab(hr, 1 / 2))
    return root


def test_enlarged_size_is_to_times_floor_of_from():
    assert enlarged_size((1356, 2040), 3, 2) == (904, 1360)
    assert enlarged_size((301, 452), 3, 2) == (200, 300)
    assert enlarged_size((301, 452), 4, 3) == (225, 339)


def test_sizes_lr_bytes_and_the_matlab_resize(sets, tmp_path):
    rep = enlarge(sets / "X3", tmp_path / "out", jobs=1, progress=False)
    assert rep.enlarged == 4 and rep.merged == 0 and "keys <key>_x3" in rep.summary()
    for i, (h, w) in enumerate(SIZES):
        key = f"{i:06d}"
        new = read_image(tmp_path / f"out/HR/{key}_x3.png")
        assert new.shape == (2 * (h // 3), 2 * (w // 3), 3)
        lr_out, lr_in = tmp_path / f"out/LR/{key}_x3.png", sets / f"X3/LR/{key}.png"
        assert lr_out.read_bytes() == lr_in.read_bytes()
        assert lr_out.stat().st_ino == lr_in.stat().st_ino  # hard link by default
        hr = read_image(sets / f"X3/HR/{key}.png")
        np.testing.assert_array_equal(new, imresize_matlab(hr[: h // 3 * 3, : w // 3 * 3], size=new.shape[:2]))
    # The result is a valid x2 dataset: every LR is exactly half of its new HR.
    hr_f, lr_f, keys = find_pair(tmp_path / "out", 2)
    assert keys == [f"{i:06d}_x3" for i in range(4)]
    assert enlarge(sets / "X3", tmp_path / "out", progress=False).step.status == "up to date"


def test_pil_resize_is_plain_pillows_bicubic_and_copies(sets, tmp_path):
    enlarge(sets / "X3", tmp_path / "out", resize="pil", link="copy", key_prefix="x3_", jobs=1, progress=False)
    hr = read_image(sets / "X3/HR/000001.png")  # 301x452 -> cropped to 300x450 -> 200x300
    expect = pil_resize(np.ascontiguousarray(hr[:300, :450]), (200, 300), "bicubic", pillow=(7, 1, 2))
    np.testing.assert_array_equal(read_image(tmp_path / "out/HR/x3_000001.png"), expect)
    lr_out = tmp_path / "out/LR/x3_000001.png"
    assert lr_out.read_bytes() == (sets / "X3/LR/000001.png").read_bytes()
    assert lr_out.stat().st_ino != (sets / "X3/LR/000001.png").stat().st_ino
    matlab = resize_hr(hr, 3, 2, "matlab")
    assert 0 < np.abs(matlab.astype(int) - expect).mean() < 1  # close, not the same


def test_pil_resize_equals_plain_pillow_on_every_bundled_image(samples):
    """``--resize pil`` on every bundled image equals plain Pillow's Image.resize(size) (default filter:
    BICUBIC), not pillow-simd's; all are wider than half their height, so Pillow 7.1.2 and 13 agree."""
    jobs, mine = {}, {}
    for path in sorted(samples.glob("*/*.png")):
        hr = read_image(path)
        size = enlarged_size(hr.shape[:2], 3, 2)
        key = f"{path.parent.name}/{path.stem}"
        jobs[key] = (np.ascontiguousarray(hr[: size[0] // 2 * 3, : size[1] // 2 * 3]), size, "default")
        mine[key] = resize_hr(hr, 3, 2, "pil")
    _, ref = plain_pillow_resize(jobs)
    for key, img in mine.items():
        np.testing.assert_array_equal(img, ref[key], err_msg=key)


def test_merge_gives_the_combined_set_and_collisions_are_errors(sets, tmp_path):
    rep = enlarge(sets / "X3", tmp_path / "out", merge=sets / "X2", jobs=1, progress=False)
    assert (rep.enlarged, rep.merged) == (4, 3) and "= 7 pairs" in rep.summary()
    keys = FolderStore(tmp_path / "out/HR").keys()
    assert keys == ["000000", "000000_x3", "000001", "000001_x3", "000002", "000002_x3", "000003_x3"]
    assert FolderStore(tmp_path / "out/LR").keys() == keys
    assert (tmp_path / "out/HR/000001.png").read_bytes() == (sets / "X2/HR/000001.png").read_bytes()
    _, _, paired = find_pair(tmp_path / "out", 2)
    assert len(paired) == 7
    with pytest.raises(StoreError, match=r"key collision: 3 enlarged key\(s\) also exist in .*X2: 000000, 000001, "
                                         r"000002 .*--key-suffix"):
        enlarge(sets / "X3", tmp_path / "out2", merge=sets / "X2", key_suffix="", progress=False)
    assert not (tmp_path / "out2").exists()


def test_bad_pairs_are_named(sets, tmp_path):
    bad = tmp_path / "bad"
    for sub in ("HR", "LR"):
        (bad / sub).mkdir(parents=True)
        for p in (sets / "X3" / sub).iterdir():
            (bad / sub / p.name).write_bytes(p.read_bytes())
    write_image(bad / "LR/000002.png", np.zeros((99, 150, 3), np.uint8))  # HR 302x449 -> should be 100x149
    with pytest.raises(StoreError, match=r"LR/000002.png is 99x150 but .*HR/000002.png is 302x449: at x3 the LR "
                                         r"should be 100x149"):
        enlarge(bad, tmp_path / "out", progress=False)
    (bad / "LR/000002.png").unlink()
    with pytest.raises(StoreError, match=r"HR/LR count mismatch: 4 images in .*HR, 3 in .*LR; no LR image for "
                                         r".*HR/000002.png"):
        enlarge(bad, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="from_scale > to_scale"):
        enlarge(sets / "X3", tmp_path / "out", from_scale=2, to_scale=2)


def test_dry_run_and_cli(sets, tmp_path, capsys):
    rep = enlarge(sets / "X3", tmp_path / "out", merge=sets / "X2", dry_run=True, progress=False)
    assert "would write 4 enlarged pairs" in rep.summary() and not (tmp_path / "out").exists()
    assert main(["enlarge", sets / "X3", tmp_path / "out", "--merge", sets / "X2", "--key-suffix", "_from3",
                 "--link", "symlink", "-j", "2"]) == 0
    assert "wrote 4 enlarged pairs (keys <key>_from3) + 3 merged x2 pairs = 7 pairs" in capsys.readouterr().out
    assert (tmp_path / "out/LR/000003_from3.png").is_symlink()
    proc = subprocess.run([sys.executable, "-m", "srprep", "enlarge", "--help"], capture_output=True, text=True,
                          cwd=REPO)
    assert "Example" in proc.stdout and "37118" in proc.stdout
