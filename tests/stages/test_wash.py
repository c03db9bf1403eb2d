"""srprep wash: the real AIM2020 clean-ID lists over an AIM-layout tree (both modes, every link kind), ID lists
with bad lines, missing and duplicate IDs, views of packed stores, SRC never touched, hard links across file
systems, the command line."""
import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srprep.cli import main
from srprep.errors import StoreError
from srprep.io.hdf5_store import Hdf5Store
from srprep.io.images import encode_image, read_image
from srprep.io.lmdb_store import LmdbStore
from srprep.io.stores import FolderStore, open_store
from srprep.io.view import ViewStore
from srprep.stages.crop import Field
from srprep.stages.pack import pack
from srprep.stages.wash import IdListError, read_id_list, wash

REPO = Path(__file__).resolve().parents[2]
HR_PNG = encode_image(np.full((4, 4, 3), 7, np.uint8))
LR_PNG = encode_image(np.full((2, 2, 3), 9, np.uint8))
# A subset of the 19,000 AIM ids: the first 1000 and a window from the middle, listed and unlisted alike.
SUBSET = [f"{i:06d}" for i in [*range(0, 1000), *range(9000, 9500)]]


def make_aim_tree(root: Path, ids) -> Path:
    """An AIM2020 layout root/HR/NNNNNN.png + root/LR/NNNNNN.png with tiny (69-byte) PNGs."""
    for sub, data in (("HR", HR_PNG), ("LR", LR_PNG)):
        (root / sub).mkdir(parents=True)
        for i in ids:
            (root / sub / f"{i}.png").write_bytes(data)
    return root


def aim_list(ref_data, scale) -> list[str]:
    return [line.strip()[:-4] for line in (ref_data / f"aim2020/x{scale}_clean_img_id.txt").read_text().splitlines()
            if line.strip()]


def snapshot(root: Path) -> dict:
    """Bytes and mtime of every file and folder under root (what 'SRC is never touched' means)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        out[dirpath] = ("dir", os.stat(dirpath).st_mtime_ns)
        for name in filenames:
            p = os.path.join(dirpath, name)
            out[p] = (hashlib.sha256(open(p, "rb").read()).hexdigest(), os.stat(p).st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def aim_subset(tmp_path_factory):
    return make_aim_tree(tmp_path_factory.mktemp("aim") / "X2", SUBSET)


# ------------------------------------------------------------------------------------------ ID lists


def test_real_lists_parse_to_the_documented_counts(ref_data):
    for scale, n in ((2, 18475), (3, 18643), (4, 18652)):
        ids = read_id_list(ref_data / f"aim2020/x{scale}_clean_img_id.txt")
        assert len(ids.keys) == n and not ids.duplicates
        assert ids.keys[0] == "000090" and all(len(k) == 6 and k.isdigit() for k in ids.keys)


def test_id_list_forms_comments_blank_lines_and_duplicates(tmp_path):
    p = tmp_path / "ids.txt"
    p.write_bytes("\ufeff# washed by hand\r\n000003.png\r\n\r\n  000001  \n000002.PNG\n000003\n# end\n000001.jpg\n"
                  .encode())
    ids = read_id_list(p)
    assert ids.keys == ["000003", "000001", "000002"]
    assert ids.duplicates == {"000003": [2, 6], "000001": [4, 8]}
    assert ids.lines["000002"] == 5


@pytest.mark.parametrize("line, why", [
    ("../HR/000001.png", "path separator"),
    ("sub\\000001.png", "path separator"),
    ("..", "'..'"),
    ("000001..png", "'..'"),
    ("0000\x0701.png", "control character"),
    ("000001.png 1", "white space"),
    (".hidden.png", "starts with '.'"),
])
def test_bad_lines_are_refused_with_their_line_number(tmp_path, line, why):
    p = tmp_path / "ids.txt"
    p.write_text(f"000000.png\n\n{line}\n000002.png\n")
    with pytest.raises(IdListError, match=rf"ids.txt:3: .*{why}"):
        read_id_list(p)


def test_several_bad_lines_are_listed_and_empty_or_binary_lists_refused(tmp_path):
    p = tmp_path / "ids.txt"
    p.write_text("a/b.png\nok.png\n../c\n")
    with pytest.raises(IdListError) as exc:
        read_id_list(p)
    assert "2 bad line(s)" in str(exc.value) and "ids.txt:1:" in str(exc.value) and "ids.txt:3:" in str(exc.value)
    p.write_text("# nothing\n\n")
    with pytest.raises(IdListError, match="no IDs"):
        read_id_list(p)
    p.write_bytes(b"000001.png\n\xff\xfe\n")
    with pytest.raises(IdListError, match=r"ids.txt:2: not UTF-8"):
        read_id_list(p)


# ------------------------------------------------------------------------------------------ folders


@pytest.mark.parametrize("link", ["hardlink", "symlink", "copy"])
@pytest.mark.parametrize("mode", ["keep", "drop"])
def test_real_list_over_an_aim_subset_keeps_exactly_the_listed_ids_that_exist(ref_data, aim_subset, tmp_path,
                                                                             mode, link):
    ids_file = ref_data / "aim2020/x2_clean_img_id.txt"
    listed = set(aim_list(ref_data, 2))
    before = snapshot(aim_subset)
    with pytest.raises(StoreError, match=r"x2_clean_img_id.txt: \d+ listed ID\(s\) are not in .*"
                                         r"001000 \(line 974\).*--allow-missing"):
        wash(aim_subset, tmp_path / "out", ids_file, mode=mode, link=link, progress=False)
    assert not (tmp_path / "out").exists()

    rep = wash(aim_subset, tmp_path / "out", ids_file, mode=mode, link=link, allow_missing=True, progress=False)
    expect = [k for k in SUBSET if (k in listed) == (mode == "keep")]
    assert 30 < len(SUBSET) - len([k for k in SUBSET if k in listed]) < 100  # the subset has unlisted ids
    assert rep.kept == expect and len(rep.dropped) == len(SUBSET) - len(expect)
    assert set(rep.missing) == listed - set(SUBSET) and len(rep.missing) == 18475 - sum(k in listed for k in SUBSET)
    for sub, data in (("HR", HR_PNG), ("LR", LR_PNG)):
        files = sorted(p.name for p in (tmp_path / "out" / sub).iterdir())
        assert files == [f"{k}.png" for k in expect]
        sample = tmp_path / "out" / sub / files[0]
        assert sample.read_bytes() == data
        assert sample.is_symlink() == (link == "symlink")
        assert (sample.stat().st_ino == (aim_subset / sub / files[0]).stat().st_ino) == (link != "copy")
    assert f"kept {len(expect)}, dropped {len(SUBSET) - len(expect)}, missing {len(rep.missing)}" in rep.summary()
    assert snapshot(aim_subset) == before
    # Paired: the washed folder reads as a dataset with the same keys in both fields.
    assert FolderStore(tmp_path / "out/HR").keys() == FolderStore(tmp_path / "out/LR").keys() == expect


@pytest.mark.slow
def test_full_aim_tree_with_the_three_real_lists(ref_data, tmp_path):
    src = make_aim_tree(tmp_path / "X", [f"{i:06d}" for i in range(19000)])
    for scale, n in ((2, 18475), (3, 18643), (4, 18652)):
        rep = wash(src, tmp_path / f"X{scale}_clean", ref_data / f"aim2020/x{scale}_clean_img_id.txt",
                   progress=False)
        assert (len(rep.kept), len(rep.dropped), len(rep.missing)) == (n, 19000 - n, 0)
        assert len(list((tmp_path / f"X{scale}_clean/LR").iterdir())) == n
    rep = wash(src, tmp_path / "X2_bad", ref_data / "aim2020/x2_clean_img_id.txt", mode="drop", progress=False)
    assert len(rep.kept) == 525 and "000000" not in rep.kept


def test_duplicates_missing_and_a_changed_list_on_rerun(tmp_path):
    src = make_aim_tree(tmp_path / "X2", ["000000", "000001", "000002", "000003"])
    ids = tmp_path / "ids.txt"
    ids.write_text("000001.png\n000003.png\n000001.png\n000777.png\n")
    rep = wash(src, tmp_path / "out", ids, allow_missing=True, progress=False)
    assert rep.kept == ["000001", "000003"] and rep.missing == ["000777"] and rep.dropped == ["000000", "000002"]
    s = rep.summary()
    assert "missing 1 of 3 listed IDs, 1 duplicated" in s and "000001 (lines 1, 3)" in s and "missing: 000777" in s
    assert wash(src, tmp_path / "out", ids, allow_missing=True, progress=False).step.status == "up to date"
    ids.write_text("000002.png\n000003.png\n")
    rep = wash(src, tmp_path / "out", ids, progress=False)
    assert (rep.step.processed, rep.step.reused, rep.step.removed) == (1, 1, 1)
    assert sorted(p.name for p in (tmp_path / "out/HR").iterdir()) == ["000002.png", "000003.png"]


def test_div2k_naming_ids_match_keys_not_file_names(tmp_path, rng):
    for k in ("0001", "0002", "0003"):
        (tmp_path / "D/HR").mkdir(parents=True, exist_ok=True)
        (tmp_path / "D/X2").mkdir(parents=True, exist_ok=True)
        (tmp_path / f"D/HR/{k}.png").write_bytes(HR_PNG)
        (tmp_path / f"D/X2/{k}x2.png").write_bytes(LR_PNG)
    ids = tmp_path / "ids.txt"
    ids.write_text("0002.png\n0003\n")
    wash(tmp_path / "D", tmp_path / "out", ids, link="copy", progress=False)
    assert sorted(p.name for p in (tmp_path / "out/X2").iterdir()) == ["0002x2.png", "0003x2.png"]
    assert sorted(p.name for p in (tmp_path / "out/HR").iterdir()) == ["0002.png", "0003.png"]


def test_bad_sources_and_destinations(tmp_path):
    src = make_aim_tree(tmp_path / "X2", ["000000", "000001"])
    (src / "LR/000002.png").write_bytes(LR_PNG)
    ids = tmp_path / "ids.txt"
    ids.write_text("000000.png\n")
    with pytest.raises(StoreError, match=r"HR/LR count mismatch: 2 images in .*HR, 3 in .*LR; no HR image for "
                                         r".*LR/000002.png"):
        wash(src, tmp_path / "out", ids, progress=False)
    (src / "LR/000002.png").unlink()
    with pytest.raises(StoreError, match="overlaps the source"):
        wash(src, src / "clean", ids, progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty and is not an srprep output"):
        wash(src, tmp_path / "busy", ids, progress=False)
    with pytest.raises(StoreError, match="expected .*HR and .*LR"):
        wash(src / "HR", tmp_path / "out", ids, progress=False)


def test_hardlink_across_file_systems_is_a_clear_error(tmp_path, monkeypatch):
    src = make_aim_tree(tmp_path / "X2", ["000000", "000001"])
    ids = tmp_path / "ids.txt"
    ids.write_text("000000.png\n")

    def cross_device(a, b, *args, **kw):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    with pytest.raises(StoreError, match="different file systems; use --link copy .* or --link symlink"):
        wash(src, tmp_path / "out", ids, progress=False)
    assert not list((tmp_path / "out").rglob("*.png"))
    wash(src, tmp_path / "out", ids, link="copy", progress=False)  # the suggested way out works
    assert (tmp_path / "out/HR/000000.png").read_bytes() == HR_PNG


def test_dry_run_writes_nothing(tmp_path):
    src = make_aim_tree(tmp_path / "X2", ["000000", "000001", "000002"])
    ids = tmp_path / "ids.txt"
    ids.write_text("000001.png\n")
    rep = wash(src, tmp_path / "out", ids, mode="drop", dry_run=True, progress=False)
    assert rep.kept == ["000000", "000002"] and "would keep 2, dropped 1" in rep.summary()
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ packed stores


@pytest.fixture(scope="module")
def photo_set(samples, tmp_path_factory):
    """Six real-photo pairs (Kodak crops, x2 by striding) in the AIM layout."""
    root = tmp_path_factory.mktemp("photos") / "X2"
    kodak = [read_image(p) for p in sorted((samples / "kodak").glob("*.png"))]
    for i in range(6):
        hr = np.ascontiguousarray(kodak[i][:96, :128])
        (root / "HR").mkdir(parents=True, exist_ok=True)
        (root / "LR").mkdir(parents=True, exist_ok=True)
        (root / f"HR/{i:06d}.png").write_bytes(encode_image(hr))
        (root / f"LR/{i:06d}.png").write_bytes(encode_image(np.ascontiguousarray(hr[::2, ::2])))
    return root


@pytest.mark.parametrize("fmt", ["lmdb", "hdf5"])
def test_packed_stores_are_washed_into_views_that_read_like_stores(photo_set, tmp_path, fmt):
    packed = tmp_path / "packed"
    pack(photo_set, packed, fmt=fmt, jobs=1, progress=False)
    before = snapshot(packed)
    ids = tmp_path / "ids.txt"
    ids.write_text("000004.png\n000001.png\n000005.png\n")
    rep = wash(packed, tmp_path / "clean", ids, progress=False)
    assert rep.fields == {"HR": "view", "LR": "view"} and rep.kept == ["000001", "000004", "000005"]
    for name in ("HR", "LR"):
        view = open_store(tmp_path / "clean" / name)
        assert isinstance(view, ViewStore) and view.keys() == ["000001", "000004", "000005"]
        assert "000000" not in view
        for k in view.keys():
            expect = read_image(photo_set / name / f"{k}.png")
            np.testing.assert_array_equal(view.read(k), expect)
            assert view.shape(k) == expect.shape
            np.testing.assert_array_equal(view.read_region(k, 2, 3, 8, 9), expect[2:10, 3:12])
        with pytest.raises(StoreError, match="no item '000000'"):
            view.read("000000")
    assert not list((tmp_path / "clean").rglob("*.png")) and not list((tmp_path / "clean").rglob("*.mdb"))
    assert snapshot(packed) == before
    # pack reads the views like any store: the washed set packs to exactly the kept pairs.
    fields = [Field("HR", open_store(tmp_path / "clean/HR"), 1), Field("LR", open_store(tmp_path / "clean/LR"), 2)]
    pack(None, tmp_path / "repacked", fields=fields, fmt="lmdb", jobs=1, progress=False)
    repacked = LmdbStore(tmp_path / "repacked/LR.lmdb")
    assert repacked.keys() == ["000001", "000004", "000005"]
    np.testing.assert_array_equal(repacked.read("000004"), read_image(photo_set / "LR/000004.png"))
    # A dataset moved together with its views still opens (the source is found relative to the view).
    if fmt == "lmdb":  # py-lmdb keeps one handle per file and process: close them before moving the files
        for name in ("HR", "LR"):
            LmdbStore(packed / f"{name}.lmdb").close()
    (tmp_path / "moved").mkdir()
    for name in ("packed", "clean"):
        (tmp_path / name).rename(tmp_path / "moved" / name)
    moved = open_store(tmp_path / "moved/clean/LR")
    assert moved.keys() == ["000001", "000004", "000005"]
    np.testing.assert_array_equal(moved.read("000005"), read_image(photo_set / "LR/000005.png"))


def test_a_view_notices_a_rewritten_source(photo_set, tmp_path):
    packed = tmp_path / "packed"
    pack(photo_set, packed, fmt="hdf5", jobs=1, progress=False)
    ids = tmp_path / "ids.txt"
    ids.write_text("000002.png\n")
    wash(packed, tmp_path / "clean", ids, progress=False)
    assert isinstance(open_store(tmp_path / "clean/HR").sources[0], Hdf5Store)
    pack(photo_set, packed, fmt="hdf5", jobs=1, force=True, progress=False, hdf5_compression="gzip")
    with pytest.raises(StoreError, match="changed since the view was made"):
        open_store(tmp_path / "clean/HR")
    assert open_store(tmp_path / "clean/HR", check=False).keys() == ["000002"]


# ------------------------------------------------------------------------------------------ command line


def test_cli_summary_and_errors(tmp_path, capsys):
    src = make_aim_tree(tmp_path / "X2", ["000000", "000001", "000002"])
    ids = tmp_path / "ids.txt"
    ids.write_text("000002.png\n000009.png\n")
    assert main(["wash", src, tmp_path / "out", "--ids", ids]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "000009 (line 2)" in err and len(err.strip().splitlines()) == 1
    assert main(["wash", src, tmp_path / "out", "--ids", ids, "--allow-missing", "--link", "symlink"]) == 0
    assert "kept 1, dropped 2, missing 1 of 2 listed IDs" in capsys.readouterr().out
    assert (tmp_path / "out/LR/000002.png").is_symlink()
    ids.write_text("000001.png\n../../etc/passwd\n")
    assert main(["wash", src, tmp_path / "out2", "--ids", ids, "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "ids.txt:2:" in err and "path separator" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out2").exists()


def test_help_teaches_with_an_example():
    proc = subprocess.run([sys.executable, "-m", "srprep", "wash", "--help"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and "Example" in proc.stdout and "--mode" in proc.stdout and "x2_clean" in proc.stdout


def test_views_join_sources_under_prefixes_and_refuse_what_they_cannot_read(photo_set, tmp_path):
    from srprep.io.view import ViewSource, write_view

    packed = tmp_path / "packed"
    pack(photo_set, packed, fmt="lmdb", jobs=1, progress=False)
    hr = LmdbStore(packed / "HR.lmdb")
    folder = FolderStore(photo_set / "HR", naming="same")
    write_view(tmp_path / "joined", [ViewSource(packed / "HR.lmdb", hr, ["000001", "000002"]),
                                     ViewSource(photo_set / "HR", folder, ["000001"], suffix="_f",
                                                options={"naming": "same"})])
    view = open_store(tmp_path / "joined")
    assert view.keys() == ["000001", "000002", "000001_f"] and len(view) == 3
    np.testing.assert_array_equal(view.read("000001_f"), view.read("000001"))
    assert view.item_fingerprint("000001_f") == folder.item_fingerprint("000001")
    assert view.fingerprint() == open_store(tmp_path / "joined").fingerprint()
    with pytest.raises(StoreError, match="key '000001' comes from two sources .* give one of them a prefix"):
        write_view(tmp_path / "clash", [ViewSource(packed / "HR.lmdb", hr, ["000001"]),
                                        ViewSource(photo_set / "HR", folder, ["000001"])])
    with pytest.raises(StoreError, match=r"HR.lmdb: has no item '000777'"):
        write_view(tmp_path / "v2", [ViewSource(packed / "HR.lmdb", hr, ["000001", "000777"])])
    with pytest.raises(StoreError, match="not empty and is not a view"):
        write_view(photo_set / "HR", [ViewSource(packed / "HR.lmdb", hr, ["000001"])])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken/view.json").write_text("{not json")
    with pytest.raises(StoreError, match="broken/view.json: unreadable view"):
        open_store(tmp_path / "broken")
    (tmp_path / "broken/view.json").write_text('{"format": "something-else"}')
    with pytest.raises(StoreError, match="not an srprep view"):
        open_store(tmp_path / "broken")
