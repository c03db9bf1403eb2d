"""srprep pack: LMDB and HDF5 stores from a paired dataset, with and without cropping; BasicSR's LMDB format;
resume after a real SIGKILL with every key exactly once; incremental updates; clear errors."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import lmdb
import numpy as np
import pytest

from srprep.errors import ImageError, StoreError
from srprep.io.hdf5_store import Hdf5Store
from srprep.io.images import read_image, write_image
from srprep.io.lmdb_store import LmdbStore
from srprep.stages.crop import CropOptions, OptionsError, crop
from srprep.stages.pack import dataset_fields, pack
from tests.io.test_lmdb_store import basicsr_read

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(samples, tmp_path_factory):
    """16 real-photo HR images of 200-264 px (cut from the Kodak samples) with x2 LR (cv2 INTER_AREA)."""
    root = tmp_path_factory.mktemp("data")
    kodak = [read_image(p) for p in sorted((samples / "kodak").glob("*.png"))]
    for i in range(16):
        img = kodak[i % 8]
        h, w = 200 + 4 * i, 264 - 4 * i + (i % 2)  # odd widths: HR is not always LR * 2
        y, x = 17 * (i // 8), 23 * (i // 8)
        hr = np.ascontiguousarray(img[y:y + h, x:x + w])
        write_image(root / f"HR/img{i:02d}.png", hr)
        write_image(root / f"X2/img{i:02d}x2.png",
                    cv2.resize(hr[: h // 2 * 2, : w // 2 * 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    return root


def copy_dataset(dataset, tmp_path):
    shutil.copytree(dataset, tmp_path / "data")
    return tmp_path / "data"


def main_keys(path):
    """Every item key in an LMDB's main database (sub-database names start with '.')."""
    LmdbStore(path, allow_incomplete=True).close()  # py-lmdb allows one handle per process
    env = lmdb.open(str(path), readonly=True, lock=False, max_dbs=4)
    with env.begin() as txn:
        keys = [bytes(k).decode() for k in txn.cursor().iternext(values=False)]
    env.close()
    return [k for k in keys if not k.startswith(".")]


OPTS = CropOptions(96, 48)


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_pack_crop_equals_crop_then_pack_and_the_sub_image_files(dataset, tmp_path, encoding):
    direct = pack(dataset, tmp_path / "direct", crop=OPTS, encoding=encoding, jobs=2, progress=False)
    crop(dataset / "HR", [dataset / "X2"], tmp_path / "sub", OPTS, jobs=2, progress=False)
    two_step = pack(tmp_path / "sub", tmp_path / "two", encoding=encoding, jobs=1, progress=False)
    n = len(list((tmp_path / "sub/HR").glob("*.png")))
    assert direct.counts == two_step.counts == {"HR": n, "X2": n}
    assert direct.images == 16 and two_step.images == n
    for field, sfx in (("HR", ""), ("X2", "x2")):
        a, b = LmdbStore(tmp_path / f"direct/{field}.lmdb"), LmdbStore(tmp_path / f"two/{field}.lmdb")
        files = sorted(p.stem[: len(p.stem) - len(sfx)] for p in (tmp_path / f"sub/{field}").glob("*.png"))
        assert a.keys() == b.keys() == files
        assert main_keys(tmp_path / f"direct/{field}.lmdb") == a.keys()  # every key once, nothing else
        for k in a.keys()[::7]:
            ref = read_image(tmp_path / f"sub/{field}/{k}{sfx}.png")
            np.testing.assert_array_equal(a.read(k), ref)
            assert a.read_bytes(k) == b.read_bytes(k)
        assert a.meta["complete"] and a.meta["scale"] == (1 if field == "HR" else 2)


def test_basicsr_reads_the_png_lmdb_pair(dataset, tmp_path):
    pack(dataset, tmp_path / "out", crop=OPTS, encoding="png", png_level=1, jobs=2, progress=False)
    hr, hr_meta, hr_levels = basicsr_read(tmp_path / "out/HR.lmdb")
    lr, lr_meta, _ = basicsr_read(tmp_path / "out/X2.lmdb")
    assert set(hr) == set(lr) and len(hr) > 100  # BasicSR's paired_paths_from_lmdb requires equal key sets
    assert set(hr_levels.values()) == {1}
    assert (tmp_path / "out/HR.lmdb/meta_info.txt").read_text().splitlines()[0] == "img00_s001.png (96,96,3) 1"
    for k in sorted(hr)[::11]:
        assert hr_meta[k] == (96, 96, 3) and lr_meta[k] == (48, 48, 3)
        i, idx = int(k[3:5]), int(k.split("_s")[1])
        src = read_image(dataset / f"HR/img{i:02d}.png")
        h, w = src.shape[0] // 2 * 2, src.shape[1] // 2 * 2
        xs = list(range(0, w - 96 + 1, 48)) + ([w - 96] if (w - 96) % 48 else [])
        y, x = 48 * ((idx - 1) // len(xs)), xs[(idx - 1) % len(xs)]
        y = min(y, h - 96)
        np.testing.assert_array_equal(hr[k][:, :, ::-1], src[y:y + 96, x:x + 96])


@pytest.mark.parametrize("compression", [None, "lzf", "gzip"])
def test_hdf5_with_crop_is_stacked_and_exact(dataset, tmp_path, compression):
    rep = pack(dataset, tmp_path / "h5", fmt="hdf5", crop=OPTS, hdf5_compression=compression, jobs=2, progress=False)
    pack(dataset, tmp_path / "lmdb", crop=OPTS, jobs=1, progress=False)
    n = rep.counts["HR"]
    with h5py.File(tmp_path / "h5/data.h5") as f:
        assert f["HR/images"].shape == (n, 96, 96, 3) and f["X2/images"].shape == (n, 48, 48, 3)
        assert f["HR/images"].compression == compression and f["X2"].attrs["scale"] == 2
        assert json.loads(f.attrs["crop"]) == {"size": 96, "step": 48, "thresh": 0, "small": "error"}
        assert f.attrs["complete"] and "modcrop" in f.attrs["convention"]
    for field in ("HR", "X2"):
        h5, lm = Hdf5Store(tmp_path / "h5/data.h5", field), LmdbStore(tmp_path / f"lmdb/{field}.lmdb")
        assert sorted(h5.keys()) == lm.keys()
        for k in lm.keys()[::5]:
            np.testing.assert_array_equal(h5.read(k), lm.read(k))
    assert not (tmp_path / "h5/data.h5.partial").exists()


def test_whole_images_of_several_sizes_and_extra_fields(ref_data, tmp_path):
    """No crop: Set5 at its original sizes (HR not a multiple of 3), plus HR-sized and LR-sized extra
    fields whose scales are inferred from their sizes."""
    s5 = ref_data / "benchmark/Set5"
    data = tmp_path / "data"
    shutil.copytree(s5 / "HR", data / "HR")
    shutil.copytree(s5 / "LR_bicubic/X3", data / "X3")
    for p in (data / "X3").glob("*.png"):
        lr = read_image(p)
        name = p.stem[:-2]
        sr = cv2.resize(lr, (lr.shape[1] * 3, lr.shape[0] * 3), interpolation=cv2.INTER_NEAREST)
        write_image(data / f"sr_pretrained/{name}.png", sr)
        write_image(data / f"lr_pretrained/{name}.png", lr[:, ::-1].copy())
    fields = dataset_fields(data)
    assert [(f.name, f.scale) for f in fields] == [("HR", 1), ("X3", 3), ("lr_pretrained", 3), ("sr_pretrained", 1)]
    for fmt in ("lmdb", "hdf5"):
        pack(data, tmp_path / fmt, fmt=fmt, jobs=1, progress=False)
    for f in fields:
        lm = LmdbStore(tmp_path / f"lmdb/{f.name}.lmdb")
        h5 = Hdf5Store(tmp_path / "hdf5/data.h5", f.name)
        assert h5.layout == "per-key" and sorted(h5.keys()) == lm.keys() == sorted(f.store.keys())
        for k in lm.keys():
            np.testing.assert_array_equal(lm.read(k), f.store.read(k))
            np.testing.assert_array_equal(h5.read(k), f.store.read(k))
    # cropped: extra fields are cut at their own scale, on the same grid
    pack(data, tmp_path / "crop", crop=CropOptions(48, 24), jobs=1, progress=False)
    sr = LmdbStore(tmp_path / "crop/sr_pretrained.lmdb")
    lrp = LmdbStore(tmp_path / "crop/lr_pretrained.lmdb")
    src_sr, src_lr = read_image(data / "sr_pretrained/bird.png"), read_image(data / "lr_pretrained/bird.png")
    np.testing.assert_array_equal(sr.read("bird_s002"), src_sr[0:48, 24:72])
    np.testing.assert_array_equal(lrp.read("bird_s002"), src_lr[0:16, 8:24])


def test_incremental_update_and_parameter_change(dataset, tmp_path):
    data = copy_dataset(dataset, tmp_path)
    first = pack(data, tmp_path / "out", crop=OPTS, jobs=1, progress=False)
    assert first.step.processed == 16
    assert pack(data, tmp_path / "out", crop=OPTS, jobs=1, progress=False).step.status == "up to date"
    (data / "HR/img03.png").unlink()
    (data / "X2/img03x2.png").unlink()
    shutil.copy(data / "HR/img04.png", data / "HR/new.png")
    shutil.copy(data / "X2/img04x2.png", data / "X2/newx2.png")
    rep = pack(data, tmp_path / "out", crop=OPTS, encoding="raw", jobs=1, progress=False)
    assert (rep.step.processed, rep.step.reused, rep.step.removed) == (1, 15, 1)
    for field in ("HR", "X2"):
        store = LmdbStore(tmp_path / f"out/{field}.lmdb")
        keys = store.keys()
        assert not any(k.startswith("img03_") for k in keys) and any(k.startswith("new_") for k in keys)
        assert main_keys(tmp_path / f"out/{field}.lmdb") == keys and len(keys) == rep.counts[field]
        np.testing.assert_array_equal(store.read("new_s001"), store.read("img04_s001"))
    rep = pack(data, tmp_path / "out", crop=OPTS, encoding="png", jobs=1, progress=False)
    assert rep.step.processed == 16 and LmdbStore(tmp_path / "out/HR.lmdb").encoding == "png"
    assert (tmp_path / "out/HR.lmdb/meta_info.txt").read_text().count("\n") == rep.counts["HR"]


def test_bad_input_is_refused_with_the_file_or_key(dataset, tmp_path):
    data = copy_dataset(dataset, tmp_path)
    out = tmp_path / "out"
    (data / "X2/img05x2.png").rename(tmp_path / "img05x2.png")
    with pytest.raises(StoreError, match=r"X2: no image for 1 HR key\(s\): img05"):
        pack(data, out, progress=False)
    shutil.move(tmp_path / "img05x2.png", data / "X2/img05x2.png")
    lr = read_image(data / "X2/img06x2.png")
    write_image(data / "X2/img06x2.png", lr[:, :-2])
    with pytest.raises(StoreError,
                       match=r"X2/img06x2.png is 112x118 but HR .*HR/img06.png is 224x240: at x2 it should be 112x120"):
        pack(data, out, progress=False)
    write_image(data / "X2/img06x2.png", lr)
    shutil.copy(data / "HR/img07.png", data / "HR/img07.jpg")
    with pytest.raises(StoreError, match="two files give the key 'img07'"):
        pack(data, out, progress=False)
    (data / "HR/img07.jpg").unlink()
    with pytest.raises(ImageError, match=r"HR/img00.png: 200x264 image .* smaller than the 480x480 crop"):
        pack(data, out, crop=CropOptions(), progress=False)
    with pytest.raises(OptionsError, match="--size 95 is not a multiple of scale 2"):
        pack(data, out, crop=CropOptions(95, 48), progress=False)
    with pytest.raises(OptionsError, match="hdf5 --encoding raw only"):
        pack(data, out, fmt="lmdb", hdf5_compression="gzip", progress=False)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="afile: exists and is not a folder"):
        pack(data, tmp_path / "afile", progress=False)
    with pytest.raises(StoreError, match="afile/out: cannot create it"):
        pack(data, tmp_path / "afile/out", progress=False)
    out.mkdir()
    (out / "HR.lmdb").write_text("x")
    with pytest.raises(StoreError, match=r"HR.lmdb: exists and is not an LMDB folder"):
        pack(data, out, progress=False)
    (out / "HR.lmdb").unlink()
    env = lmdb.open(str(out / "X2.lmdb"))  # someone else's LMDB (an empty one holds nothing and is taken over)
    with env.begin(write=True) as txn:
        txn.put(b"theirs", b"data")
    env.close()
    with pytest.raises(StoreError, match=r"X2.lmdb: an LMDB that srprep did not write"):
        pack(data, out, progress=False)
    assert not (out / "HR.lmdb").exists() or not LmdbStore(out / "HR.lmdb", allow_incomplete=True).meta["complete"]


def test_dry_run_changes_nothing(dataset, tmp_path):
    rep = pack(dataset, tmp_path / "out", crop=OPTS, dry_run=True, progress=False)
    assert rep.step.status == "dry run" and len(rep.step.todo) == 16
    assert not (tmp_path / "out").exists()


def srprep(*args):
    proc = subprocess.run([sys.executable, "-m", "srprep", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("fmt", ["lmdb", "hdf5"])
def test_killed_pack_resumes_to_a_complete_store_with_every_key_once(dataset, tmp_path, fmt, kill_when):
    dst, ref = tmp_path / "dst", tmp_path / "ref"
    args = [dataset, dst, "--format", fmt, "--crop", "--size", "96", "--step", "48", "--encoding", "png",
            "--png-level", "9", "--commit-mib", "1", "-j", "1"]
    kill_when([sys.executable, "-m", "srprep", "pack", *args], dst, "*", 3, step="pack", cwd=REPO)
    assert not (dst / ".srprep/manifest.json").exists()
    code, out, _ = srprep("status", dst)  # the journal mirrors the stores' done-records
    assert code == 0 and re.search(r"pack incomplete: \d+ of 16 items", out), out
    if fmt == "lmdb":
        assert not LmdbStore(dst / "HR.lmdb", allow_incomplete=True).meta["complete"]
        assert not (dst / "HR.lmdb/meta_info.txt").exists()
        with pytest.raises(StoreError, match="incomplete"):
            LmdbStore(dst / "HR.lmdb")
    else:
        assert (dst / "data.h5.partial").exists() and not (dst / "data.h5").exists()
    code, out, err = srprep("pack", *args)
    assert code == 0, err
    m = re.search(r"16 items, (\d+) processed, (\d+) reused", out)
    assert m, out
    processed, reused = map(int, m.groups())
    assert (processed, reused) == (13, 3)
    code, _, err = srprep("pack", dataset, ref, *args[2:])
    assert code == 0, err
    if fmt == "lmdb":
        for field in ("HR", "X2"):
            a, b = LmdbStore(dst / f"{field}.lmdb"), LmdbStore(ref / f"{field}.lmdb")
            assert a.meta["complete"] and a.keys() == b.keys() and len(a.keys()) == a.meta["count"]
            assert main_keys(dst / f"{field}.lmdb") == a.keys()  # every key exactly once
            meta_lines = (dst / f"{field}.lmdb/meta_info.txt").read_text().splitlines()
            assert len(meta_lines) == len(set(meta_lines)) == len(a.keys())
            for k in a.keys():
                assert a.read_bytes(k) == b.read_bytes(k)
    else:
        assert not (dst / "data.h5.partial").exists()
        with h5py.File(dst / "data.h5") as f, h5py.File(ref / "data.h5") as g:
            items = [json.loads(r)["item"] for r in f[".srprep/done"][: f.attrs["done_count"]]]
            assert sorted(items) == sorted(set(items)) and len(items) == 16  # each image recorded once
            for field in ("HR", "X2"):
                keys = [k.decode() for k in f[f"{field}/keys"][()]]
                assert keys == [k.decode() for k in g[f"{field}/keys"][()]] and len(keys) == len(set(keys))
                for i in range(len(keys)):
                    assert np.array_equal(f[f"{field}/images"][i], g[f"{field}/images"][i]), keys[i]


def test_cli_help_and_one_line_errors(dataset, tmp_path):
    code, out, _ = srprep("pack", "--help")
    assert code == 0 and "Examples" in out and "--encoding" in out and "--hdf5-compression" in out
    code, out, err = srprep("pack", dataset, tmp_path / "out", "--crop", "--size", "96", "--step", "48", "-j", "2",
                            "--format", "hdf5", "--hdf5-compression", "lzf")
    assert code == 0, err
    assert re.search(r"pack: 16 items, 16 processed.*hdf5 raw, \d+ items per field \(HR, X2\) from 16 images", out)
    code, _, err = srprep("pack", dataset, tmp_path / "out2", "--crop")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "img00.png" in err and "--small" in err


# ------------------------------------------------------------------ stores that prove they are whole


def same_lmdb(a: Path, b: Path) -> bool:
    sa, sb = LmdbStore(a), LmdbStore(b)
    try:
        return sa.keys() == sb.keys() and all(sa.read_bytes(k) == sb.read_bytes(k) for k in sa.keys())
    finally:
        sa.close()
        sb.close()


DIE_IN_CREATE = """
import os, signal, sys
import lmdb
real = lmdb.open
def open_then_die(*args, **kw):
    env = real(*args, **kw)
    if not kw.get("readonly"):
        os.kill(os.getpid(), signal.SIGKILL)  # the environment exists, nothing is committed yet
    return env
lmdb.open = open_then_die
from srprep.stages.pack import pack
pack(sys.argv[1], sys.argv[2], jobs=1, progress=False)
"""


@pytest.mark.parametrize("then", ["resume", "force"])
def test_a_kill_while_pack_creates_an_lmdb_leaves_a_store_the_next_run_takes_over(dataset, tmp_path, then):
    dst, ref = tmp_path / "dst", tmp_path / "ref"
    proc = subprocess.run([sys.executable, "-c", DIE_IN_CREATE, str(dataset), str(dst)], cwd=REPO,
                          capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert (dst / "HR.lmdb/data.mdb").is_file(), "the kill must land after the environment was created"
    code, out, err = srprep("pack", dataset, dst, "-j", "1", *(["--force"] if then == "force" else []))
    assert code == 0, err
    pack(dataset, ref, jobs=1, progress=False)
    assert same_lmdb(dst / "HR.lmdb", ref / "HR.lmdb") and same_lmdb(dst / "X2.lmdb", ref / "X2.lmdb")


def test_a_truncated_or_corrupt_lmdb_is_refused_in_one_line_and_force_rebuilds_it(dataset, tmp_path):
    dst = tmp_path / "dst"
    pack(dataset, dst, jobs=1, progress=False)
    data = dst / "HR.lmdb/data.mdb"
    size = data.stat().st_size
    os.truncate(data, size // 2)
    for args in (["inspect", dst / "HR.lmdb"], ["inspect", dst / "HR.lmdb", "--sheet", tmp_path / "s.png"]):
        code, out, err = srprep(*args)
        assert code == 1, (code, err)  # not 135 (SIGBUS)
        assert err.strip().count("\n") == 0 and f"{data}: truncated LMDB ({size // 2} bytes, its header needs" in err
    with pytest.raises(StoreError, match="truncated LMDB"):
        LmdbStore(dst / "HR.lmdb")
    code, out, err = srprep("pack", dataset, dst, "-j", "1")
    assert code == 1 and "damaged since pack finished" in err and "--force" in err and "HR.lmdb/data.mdb" in err
    code, out, err = srprep("pack", dataset, dst, "-j", "1", "--force")
    assert code == 0, err
    assert data.stat().st_size == size and LmdbStore(dst / "HR.lmdb").meta["complete"]

    with open(data, "r+b") as fh:  # a corrupt header
        fh.write(b"\0" * 64)
        fh.seek(4096)
        fh.write(b"\0" * 64)
    code, out, err = srprep("inspect", dst / "HR.lmdb")
    assert code == 1 and err.strip() == f"error: {data}: damaged LMDB (its header is not an LMDB header); delete " \
                                       f"the store or run the srprep command that wrote it with --force"
    (dst / ".srprep/manifest.json").unlink()  # an interrupted run's store: the writer itself must refuse it
    code, out, err = srprep("pack", dataset, dst, "-j", "1")
    assert code == 1 and "damaged LMDB" in err
    code, out, err = srprep("pack", dataset, dst, "-j", "1", "--force")
    assert code == 0, err
    assert LmdbStore(dst / "HR.lmdb").meta["complete"]


def test_a_truncated_hdf5_is_refused_in_one_line_and_force_rebuilds_it(dataset, tmp_path):
    dst = tmp_path / "dst"
    pack(dataset, dst, fmt="hdf5", jobs=1, progress=False)
    data = dst / "data.h5"
    size = data.stat().st_size
    os.truncate(data, size // 2)
    code, out, err = srprep("inspect", data)
    assert code == 1 and err.strip().count("\n") == 0 and f"{data}: truncated HDF5 file" in err
    code, out, err = srprep("pack", dataset, dst, "--format", "hdf5", "-j", "1")
    assert code == 1 and "damaged since pack finished" in err
    code, out, err = srprep("pack", dataset, dst, "--format", "hdf5", "-j", "1", "--force")
    assert code == 0, err
    assert Hdf5Store(data, "HR").attrs["complete"] and data.stat().st_size == size


def test_pack_refuses_to_write_into_its_own_input(dataset, tmp_path):
    data = copy_dataset(dataset, tmp_path)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    code, out, err = srprep("pack", data, data / "HR")
    assert code == 1 and f"{data / 'HR'}/HR.lmdb: the output of pack lies inside its input {data / 'HR'}" in err
    code, out, err = srprep("pack", data, data)
    assert code == 1 and f"{data}/HR.lmdb: the output of pack lies inside its input {data};" in err
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before


@pytest.mark.parametrize("fmt", ["lmdb", "hdf5"])
def test_a_full_disk_is_one_line_naming_the_store(dataset, small_disk, fmt):
    code, out, err = srprep("pack", dataset, small_disk / "dst", "--format", fmt, "-j", "1")
    assert code == 1, (code, err[-2000:])  # not a crash (HDF5 segfaulted, exit 139)
    line = err.strip()
    assert line.count("\n") == 0 and "the disk is full" in line, line[-2000:]
    assert str(small_disk / "dst") in line


@pytest.mark.parametrize("fmt", ["lmdb", "hdf5"])
def test_a_store_written_by_another_live_process_is_refused(dataset, tmp_path, fmt):
    from tests.test_lock import start_holder

    dst = tmp_path / "dst"
    holder = start_holder(dst / ".srprep/lock")  # a second real process holds the output
    try:
        code, out, err = srprep("pack", dataset, dst, "--format", fmt, "-j", "1")
        assert code == 1 and f"{dst}: another srprep process is writing here (pid {holder.pid} on" in err
        assert not (dst / "HR.lmdb").exists() and not (dst / "data.h5.partial").exists()
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    code, out, err = srprep("pack", dataset, dst, "--format", fmt, "-j", "1")
    assert code == 0 and "took over the lock" in err


# ------------------------------------------------------------------ workers that commit their own items


def lmdb_content(path):
    """{database: {key: value}} of every database of an LMDB but ``.offsets``, and its metadata without the
    transaction id its offsets table is valid for (both depend on the order items were committed in)."""
    LmdbStore(path, allow_incomplete=True).close()
    env = lmdb.open(str(path), readonly=True, lock=False, max_dbs=5)
    out = {}
    with env.begin() as txn:
        out["main"] = {bytes(k): bytes(v) for k, v in txn.cursor() if not bytes(k).startswith(b".")}
        for name in (b".index", b".done", b".meta"):
            out[name.decode()] = {bytes(k): bytes(v) for k, v in txn.cursor(db=env.open_db(name, txn=txn))}
    env.close()
    meta = json.loads(out.pop(".meta")[b"store"])
    meta.pop("offsets_txnid")
    return out, meta


# (png, 16/8): X2 values of ~200 bytes, which LMDB keeps inside leaf pages that later commits move: their
# offsets must be taken when the store is finished, not when a worker commits them.
@pytest.fixture
def handed(monkeypatch):
    """The type names of the records each pack result brings the parent's ledger, one per field, in order."""
    from srprep.stages import pack as pack_module

    names = []
    real_add = pack_module.LmdbLedger._add
    monkeypatch.setattr(pack_module.LmdbLedger, "_add", lambda self, item, result: (
        names.extend(type(r).__name__ for r in result.records.values()), real_add(self, item, result))[1])
    return names


@pytest.mark.parametrize("encoding, opts", [("raw", OPTS), ("png", OPTS), ("raw", None), ("png", CropOptions(16, 8)),
                                            ("raw", CropOptions(16, 8))])
def test_worker_processes_commit_their_items_and_the_stores_equal_one_writers(dataset, tmp_path, handed,
                                                                              encoding, opts):
    from srprep.io.lmdb_store import Committed

    pack(dataset, tmp_path / "two", crop=opts, encoding=encoding, jobs=2, progress=False)
    assert handed == [Committed.__name__] * 32  # 16 items x 2 fields: no pixels came back to the parent
    handed.clear()
    pack(dataset, tmp_path / "one", crop=opts, encoding=encoding, jobs=1, progress=False)
    assert "Committed" not in handed and len(handed) == 32  # one job: the parent writes
    for field in ("HR", "X2"):
        two, one = tmp_path / f"two/{field}.lmdb", tmp_path / f"one/{field}.lmdb"
        assert lmdb_content(two) == lmdb_content(one)
        a, b = LmdbStore(two), LmdbStore(one)
        assert a.meta["complete"] and a._load_offsets()  # the offsets table is there and trusted
        for k in a.keys():
            assert np.array_equal(a.read(k), b.read(k)) if encoding == "raw" else a.read_bytes(k) == b.read_bytes(k)
        a.close(), b.close()
        if encoding == "png":
            assert (two / "meta_info.txt").read_text() == (one / "meta_info.txt").read_text()
    from srprep.stages.verify import verify

    assert verify(tmp_path / "two").problems == []  # every value's CRC as the worker recorded it


def test_workers_on_threads_hand_their_records_over(dataset, tmp_path, handed):
    """Threads of one process (joblib's threading backend, as on a Dask worker) must not open the LMDB each:
    the parent writes."""
    from joblib import parallel_config

    with parallel_config(backend="threading"):
        pack(dataset, tmp_path / "threads", crop=OPTS, jobs=2, progress=False)
    assert len(handed) == 32 and "Committed" not in handed
    pack(dataset, tmp_path / "one", crop=OPTS, jobs=1, progress=False)
    for field in ("HR", "X2"):
        assert lmdb_content(tmp_path / f"threads/{field}.lmdb") == lmdb_content(tmp_path / f"one/{field}.lmdb")


def _commit_in_child(target, item, value):
    target.commit(item, "fp-" + item, [(item, value, value.shape)])


def test_a_worker_grows_a_full_map_and_the_writer_adopts_it(tmp_path):
    import multiprocessing

    from srprep.io.lmdb_store import LmdbWriter

    writer = LmdbWriter(tmp_path / "s.lmdb", map_size=1 << 20)
    writer.begin("params")
    target = writer.target()
    img = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)  # 3 MiB > the 1 MiB map
    child = multiprocessing.get_context("spawn").Process(target=_commit_in_child, args=(target, "big", img))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    writer.write("small", img[:8, :8])  # the writer's own commit after the worker grew the map
    writer.finish()
    writer.close()
    store = LmdbStore(tmp_path / "s.lmdb")
    assert store.keys() == ["big", "small"] and np.array_equal(store.read("big"), img)
    assert store.verify() == (2, [])


def test_a_worker_whose_parent_is_gone_commits_nothing(tmp_path):
    from srprep.io.lmdb_store import LmdbTarget, LmdbWriter

    writer = LmdbWriter(tmp_path / "s.lmdb")
    writer.begin("params")
    writer.write("a", np.zeros((4, 4, 3), np.uint8))
    writer.close()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    target = LmdbTarget(str(tmp_path / "s.lmdb"), 1 << 26, int(gone))  # as if a killed run had started us
    with pytest.raises(StoreError, match=rf"s.lmdb: not writing 'b': the process that runs the step \(pid {gone}\) "
                                         r"is gone"):
        target.commit("b", "fp", [("b", np.ones((4, 4, 3), np.uint8), (4, 4, 3))])
    assert LmdbStore(tmp_path / "s.lmdb", allow_incomplete=True).keys() == ["a"]


def test_killed_pack_with_worker_processes_resumes_to_the_same_store(dataset, tmp_path, kill_when):
    dst, ref = tmp_path / "dst", tmp_path / "ref"
    args = [dataset, dst, "--crop", "--size", "96", "--step", "48", "--encoding", "png", "--png-level", "9", "-j", "2"]
    kill_when([sys.executable, "-m", "srprep", "pack", *args], dst, "*", 3, step="pack", cwd=REPO)
    assert not (dst / ".srprep/manifest.json").exists()
    done = len(LmdbStore(dst / "HR.lmdb", allow_incomplete=True)._load_done())
    assert done >= 3  # the workers may have committed more than the parent recorded before the kill
    code, out, err = srprep("pack", *args)
    assert code == 0, err
    m = re.search(r"16 items, (\d+) processed, (\d+) reused", out)
    assert m and int(m.group(1)) + int(m.group(2)) == 16 and int(m.group(2)) >= 3, out
    pack(dataset, ref, crop=CropOptions(96, 48), encoding="png", png_level=9, jobs=1, progress=False)
    for field in ("HR", "X2"):
        assert lmdb_content(dst / f"{field}.lmdb") == lmdb_content(ref / f"{field}.lmdb")
        assert main_keys(dst / f"{field}.lmdb") == LmdbStore(dst / f"{field}.lmdb").keys()
