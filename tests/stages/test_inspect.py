"""srprep inspect: summaries of folders, LMDB and HDF5 stores, the pairing check, incomplete stores, and
the contact sheet."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srprep.errors import StoreError
from srprep.io.images import read_image, write_image
from srprep.io.lmdb_store import LmdbWriter
from srprep.stages.crop import CropOptions, crop
from srprep.stages.inspect import inspect
from srprep.stages.pack import pack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def set5(ref_data, tmp_path_factory):
    """Set5 HR + MATLAB X2/X4, its sub-images (96/48), and their LMDB and HDF5 packs."""
    root = tmp_path_factory.mktemp("set5")
    s5 = ref_data / "benchmark/Set5"
    shutil.copytree(s5 / "HR", root / "data/HR")
    shutil.copytree(s5 / "LR_bicubic/X2", root / "data/X2")
    shutil.copytree(s5 / "LR_bicubic/X4", root / "data/X4")
    crop(root / "data/HR", [root / "data/X2", root / "data/X4"], root / "sub", CropOptions(96, 48), jobs=1,
         progress=False)
    pack(root / "sub", root / "lmdb", encoding="png", jobs=1, progress=False)
    pack(root / "data", root / "h5", fmt="hdf5", crop=CropOptions(96, 48), jobs=1, progress=False)
    return root


@pytest.mark.parametrize("where,kind,encoding", [
    ("sub", "folder", "png"), ("lmdb", "lmdb", "png"), ("h5", "hdf5", "raw (stacked)"),
    ("h5/data.h5", "hdf5", "raw (stacked)")])
def test_summaries_and_pairing_of_datasets(set5, where, kind, encoding):
    rep = inspect(set5 / where)
    assert [s.name for s in rep.stores] == ["HR", "X2", "X4"]
    n = len(list((set5 / "sub/HR").glob("*.png")))
    for s, side, scale in zip(rep.stores, (96, 48, 24), (1, 2, 4)):
        assert (s.kind, s.count, s.scale, s.dtype, s.encoding) == (kind, n, scale, "uint8", encoding)
        assert s.shapes == [((side, side, 3), n)] and s.complete is True and s.bytes_on_disk > 0
        assert s.sample_keys == ["baby_s001", "baby_s002", "baby_s003", "baby_s004", "baby_s005"]
    assert rep.paired == n and rep.problems == []
    text = "\n".join(rep.lines())
    assert f"pairing: ok, {n} keys in every field; X2 = HR/2, X4 = HR/4" in text
    assert f"{n} items, 96x96x3 (all), uint8" in text


def test_single_stores(set5):
    rep = inspect(set5 / "lmdb/X2.lmdb")
    assert len(rep.stores) == 1 and rep.stores[0].name == "X2" and rep.stores[0].scale == 2 and rep.paired is None
    rep = inspect(set5 / "h5/data.h5/X4")
    assert rep.stores[0].name == "X4" and rep.stores[0].shapes[0][0] == (24, 24, 3)
    rep = inspect(set5 / "data/HR")
    s = rep.stores[0]
    assert s.kind == "folder" and s.count == 5 and len(s.shapes) == 5 and s.complete is None  # not made by srprep
    with pytest.raises(StoreError, match="no such file or folder"):
        inspect(set5 / "nope")


def test_pairing_problems_are_reported_not_raised(set5, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(set5 / "data", data)
    (data / "X4/birdx4.png").unlink()
    lr = read_image(data / "X2/headx2.png")
    write_image(data / "X2/headx2.png", lr[:-3])
    rep = inspect(data)
    assert len(rep.problems) == len(rep.pairing) == 2
    assert re.search(r"X4: no image for 1 HR key\(s\): bird", rep.problems[0])
    assert re.search(r"X2: .*headx2.png is 137x140 but HR .*head.png is 280x280", rep.problems[1])
    assert rep.paired == 4 and "pairing: 2 problem(s):" in "\n".join(rep.lines())


def test_incomplete_store_is_a_problem(tmp_path, rng):
    w = LmdbWriter(tmp_path / "HR.lmdb")
    w.begin("p")
    w.write("a", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    w.flush()
    w.close()
    rep = inspect(tmp_path / "HR.lmdb")
    assert rep.stores[0].complete is False and "INCOMPLETE" in rep.lines()[0]
    assert rep.problems == rep.incomplete and "writer was interrupted" in rep.lines()[-1]


def test_contact_sheet_shows_random_pairs_side_by_side(set5, tmp_path):
    rep = inspect(set5 / "lmdb", sheet=tmp_path / "sheet.png", n=4, seed=3)
    again = inspect(set5 / "h5", sheet=tmp_path / "sheet2.png", n=4, seed=3)
    assert len(rep.sheet_keys) == 4 and rep.sheet_keys == again.sheet_keys  # same seed, same keys
    sheet = read_image(tmp_path / "sheet.png")
    # column titles (HR, X2 (x2), X4 (x4)), then per row the key and sizes above each image
    assert sheet.shape == (4 + 18 + 4 * (18 + 96 + 4), 4 + 3 * (96 + 4), 3)
    assert (sheet[4:22, 4:300] > 200).any()  # title text
    # row 1: the HR sub-image, then X2 and X4 upscaled by 2 and 4 (nearest), side by side
    key = rep.sheet_keys[0]
    hr = read_image(set5 / f"sub/HR/{key}.png")
    x4 = read_image(set5 / f"sub/X4/{key}x4.png")
    top = 4 + 18 + 18
    np.testing.assert_array_equal(sheet[top:top + 96, 4:100], hr)
    np.testing.assert_array_equal(sheet[top:top + 96, 204:300], np.repeat(np.repeat(x4, 4, 0), 4, 1))
    assert np.array_equal(read_image(tmp_path / "sheet.png"), read_image(tmp_path / "sheet2.png"))


def srprep(*args):
    proc = subprocess.run([sys.executable, "-m", "srprep", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_cli(set5, tmp_path):
    code, out, err = srprep("inspect", set5 / "lmdb", "--sheet", tmp_path / "s.png", "-n", "3")
    assert code == 0, err
    assert "HR: lmdb" in out and "pairing: ok" in out and "contact sheet:" in out and (tmp_path / "s.png").exists()
    data = tmp_path / "data"
    shutil.copytree(set5 / "data", data)
    (data / "X2/babyx2.png").unlink()
    code, out, err = srprep("inspect", data)
    assert code == 1 and "pairing: 1 problem(s):" in out and err.startswith("error:")
    code, out, _ = srprep("inspect", "--help")
    assert "Example" in out and "--sheet" in out
