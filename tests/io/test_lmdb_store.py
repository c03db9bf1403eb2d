"""LMDB stores: pixel-exact round trips (raw and PNG), BasicSR's format both ways, map growth, done-records,
incomplete stores, and handles that survive pickling and fork."""
import json
import multiprocessing
import pickle
import time

import cv2
import lmdb
import numpy as np
import pytest

from srprep.errors import StoreError
from srprep.io.images import encode_image, read_image
from srprep.io.lmdb_store import LmdbStore, LmdbWriter, map_size_for
from srprep.io.stores import open_store
from tests.io.threaded import assert_threads_read_at_once


def basicsr_read(lmdb_path):
    """An LMDB reader written the way BasicSR reads (independently of srprep): keys and shapes from
    meta_info.txt, values through cv2.imdecode, env opened read-only without lock or readahead.

    Returns {key: (H, W, 3) uint8 BGR} and {key: (h, w, c) from meta_info} and {key: level}.
    """
    meta, levels = {}, {}
    with open(f"{lmdb_path}/meta_info.txt") as fh:
        for line in fh:
            name, shape, level = line.split(" ")
            key = name.split(".")[0]
            meta[key] = tuple(int(v) for v in shape.strip("()").split(","))
            levels[key] = int(level)
    env = lmdb.open(str(lmdb_path), readonly=True, lock=False, readahead=False, meminit=False)
    out = {}
    with env.begin(write=False) as txn:
        for key in meta:
            buf = txn.get(key.encode("ascii"))
            out[key] = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR)
    env.close()
    return out, meta, levels


@pytest.fixture(scope="module")
def photos(samples):
    """Real photos of several sizes: the bundled Set5 (original sizes) and two Kodak crops."""
    paths = sorted((samples / "set5").glob("*.png")) + sorted((samples / "kodak").glob("*.png"))[:2]
    return {p.stem: read_image(p) for p in paths}


def write_store(path, imgs, **kw):
    w = LmdbWriter(path, **kw)
    w.load()
    w.begin("params")
    for k, v in imgs.items():
        w.write(k, v)
    meta = w.finish()
    w.close()
    return meta


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_round_trip_is_pixel_exact(tmp_path, photos, encoding):
    meta = write_store(tmp_path / "s.lmdb", photos, encoding=encoding)
    assert meta["complete"] is True and meta["count"] == len(photos) and meta["encoding"] == encoding
    store = LmdbStore(tmp_path / "s.lmdb")
    assert store.keys() == sorted(photos)
    for k, img in photos.items():
        out = store.read(k)
        assert out.dtype == np.uint8 and out.flags.writeable and store.shape(k) == img.shape
        np.testing.assert_array_equal(out, img)
        np.testing.assert_array_equal(store.read_region(k, 7, 11, 32, 48), img[7:39, 11:59])
    assert isinstance(open_store(tmp_path / "s.lmdb"), LmdbStore)
    with pytest.raises(StoreError, match="no item 'nope'"):
        store.read("nope")


def test_raw_values_are_plain_pixels_and_png_values_are_cv2_png_files(tmp_path, photos):
    write_store(tmp_path / "raw.lmdb", photos, encoding="raw")
    write_store(tmp_path / "png.lmdb", photos, encoding="png", png_level=3)
    raw, png = LmdbStore(tmp_path / "raw.lmdb"), LmdbStore(tmp_path / "png.lmdb")
    img = photos["baby"]
    assert raw.read_bytes("baby") == img.tobytes()
    assert png.read_bytes("baby") == encode_image(img, ".png", png_level=3)
    ok, ref = cv2.imencode(".png", img[:, :, ::-1].copy(), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    assert png.read_bytes("baby") == ref.tobytes()  # what BasicSR's create_lmdb would store
    assert not (tmp_path / "raw.lmdb/meta_info.txt").exists()


def test_png_store_reads_back_with_a_basicsr_style_reader(tmp_path, photos):
    write_store(tmp_path / "png.lmdb", photos, encoding="png", png_level=1)
    bgr, meta, levels = basicsr_read(tmp_path / "png.lmdb")
    assert sorted(bgr) == sorted(photos) and set(levels.values()) == {1}
    for k, img in photos.items():
        assert meta[k] == img.shape
        np.testing.assert_array_equal(bgr[k][:, :, ::-1], img)


def test_an_lmdb_made_like_basicsr_does_is_readable(tmp_path, photos):
    path = tmp_path / "basicsr.lmdb"
    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn, open(path / "meta_info.txt", "w") as meta:
        for k, img in photos.items():
            _, buf = cv2.imencode(".png", img[:, :, ::-1].copy(), [cv2.IMWRITE_PNG_COMPRESSION, 1])
            txn.put(k.encode("ascii"), buf)
            meta.write(f"{k}.png ({img.shape[0]},{img.shape[1]},{img.shape[2]}) 1\n")
    env.close()
    store = LmdbStore(path)
    assert store.foreign and store.encoding == "png" and sorted(store.keys()) == sorted(photos)
    assert store.shape("woman") == photos["woman"].shape
    np.testing.assert_array_equal(store.read("woman"), photos["woman"])
    with pytest.raises(StoreError, match="srprep did not write"):
        LmdbWriter(path).begin("p")  # never overwrite someone else's store


def test_map_grows_when_the_estimate_is_too_small(tmp_path, photos):
    # 64 KiB of map for ~3 MB of pixels: every batch meets MDB_MAP_FULL and is retried after growing.
    w = LmdbWriter(tmp_path / "s.lmdb", encoding="raw", map_size=1 << 16, batch_bytes=1 << 20)
    w.begin("p")
    for k, img in photos.items():
        w.write(k, img)
    w.finish()
    w.close()
    store = LmdbStore(tmp_path / "s.lmdb")
    for k, img in photos.items():
        np.testing.assert_array_equal(store.read(k), img)
    store.close()
    env = lmdb.open(str(tmp_path / "s.lmdb"), readonly=True, lock=False)
    assert env.info()["map_size"] > sum(v.nbytes for v in photos.values())
    env.close()


def test_map_size_estimate_covers_page_overhead():
    n, size = 1000, 480 * 480 * 3
    est = map_size_for(n * size, n)
    assert est >= n * (-(-size // 4096)) * 4096 and est < 2 * n * size


def test_done_records_redo_forget_and_incomplete_stores(tmp_path, rng):
    img = lambda: rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)  # noqa: E731
    path = tmp_path / "s.lmdb"
    w = LmdbWriter(path, encoding="raw")
    assert w.load() == (None, {})
    w.begin("P1")
    w.add("a", "fa", [("a_s001", img(), (8, 8, 3)), ("a_s002", img(), (8, 8, 3))])
    w.add("b", "fb", [("b_s001", img(), (8, 8, 3))])
    w.flush()
    w.close()
    # not finished: refused by default, readable for inspection
    with pytest.raises(StoreError, match="incomplete LMDB store"):
        LmdbStore(path)
    assert len(LmdbStore(path, allow_incomplete=True).keys()) == 3
    w = LmdbWriter(path, encoding="raw")
    params, done = w.load()
    assert params == "P1" and done == {"a": ("fa", ["a_s001", "a_s002"]), "b": ("fb", ["b_s001"])}
    w.begin("P1")
    w.add("a", "fa2", [("a_s001", img(), (8, 8, 3))])  # redone with fewer sub-images: a_s002 must go
    w.forget(["b"])
    w.finish()
    w.close()
    store = LmdbStore(path)
    assert store.keys() == ["a_s001"] and store.meta["count"] == 1
    assert LmdbWriter(path).load()[1] == {"a": ("fa2", ["a_s001"])}


def _read_in_child(store, key, queue):
    queue.put(store.read(key).sum())


def test_pickled_and_forked_handles(tmp_path, photos):
    write_store(tmp_path / "s.lmdb", photos, encoding="raw")
    store = LmdbStore(tmp_path / "s.lmdb")
    total = int(store.read("bird").sum())  # opened in the parent before the fork
    clone = pickle.loads(pickle.dumps(store))
    assert "_env_obj" in clone.__dict__ and clone._env_obj is None
    assert int(clone.read("bird").sum()) == total  # a second object on the same path in one process
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_read_in_child, args=(store, "bird", q)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [int(q.get(timeout=300)) for _ in procs]
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    assert got == [total, total]
    assert int(store.read("bird").sum()) == total  # the parent's handle still works


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_threads_reading_a_fresh_store_at_once(tmp_path, photos, monkeypatch, encoding):
    """Threads sharing one store all read whole pixels when their first reads open it together: one handle
    per process is opened once (two threads each opening it failed with LMDB's 'already open in this
    process', or closed the handle the other was using)."""
    write_store(tmp_path / "s.lmdb", photos, encoding=encoding)
    store = LmdbStore(tmp_path / "s.lmdb")  # reads its meta, then closes: the threads open it again
    real_open = lmdb.open

    def slow_open(*args, **kwargs):
        time.sleep(0.05)  # widens the window in which a second thread finds no handle yet
        return real_open(*args, **kwargs)

    monkeypatch.setattr(lmdb, "open", slow_open)
    assert_threads_read_at_once(store, photos)


def test_writer_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "s.lmdb").write_text("x")
    with pytest.raises(StoreError, match="not an LMDB folder"):
        LmdbWriter(tmp_path / "s.lmdb").begin("p")


def test_meta_records_what_the_caller_adds(tmp_path, photos):
    write_store(tmp_path / "s.lmdb", {"baby": photos["baby"]}, encoding="png", info={"field": "X2", "scale": 2})
    meta = LmdbStore(tmp_path / "s.lmdb").meta
    assert meta["field"] == "X2" and meta["scale"] == 2 and meta["format"] == "srprep-lmdb"
    json.dumps(meta)


def test_keys_basicsr_cannot_look_up_are_warned_about(tmp_path, rng, caplog):
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    with caplog.at_level("WARNING", logger="srprep.io.lmdb_store"):
        write_store(tmp_path / "s.lmdb", {"ok_s001": img, "v1.2_s001": img}, encoding="png")
    assert "1 keys contain '.'" in caplog.text and "v1.2_s001" in caplog.text
    np.testing.assert_array_equal(LmdbStore(tmp_path / "s.lmdb").read("v1.2_s001"), img)  # srprep reads it


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_offsets_table_points_at_every_value_in_the_file(tmp_path, photos, encoding):
    write_store(tmp_path / "s.lmdb", photos, encoding=encoding)
    store = LmdbStore(tmp_path / "s.lmdb")
    offsets = store._load_offsets()
    assert sorted(offsets) == sorted(photos)
    data = (tmp_path / "s.lmdb" / "data.mdb").read_bytes()
    for key, (offset, length) in offsets.items():
        assert data[offset:offset + length] == store.read_bytes(key)  # the bytes py-lmdb hands over


def test_raw_windows_are_read_as_their_rows_only_and_equal_lmdb_reads(tmp_path, photos, monkeypatch):
    write_store(tmp_path / "s.lmdb", photos, encoding="raw")
    store = LmdbStore(tmp_path / "s.lmdb")
    reads = []
    pread = store._pread
    monkeypatch.setattr(store, "_pread", lambda offset, length: reads.append(length) or pread(offset, length))
    through_lmdb = LmdbStore(tmp_path / "s.lmdb")
    through_lmdb._offsets = {}  # as a store without the table reads
    for key, img in photos.items():
        h, w, _ = img.shape
        for top, left, size in ((0, 0, 16), (h - 16, w - 16, 16), (5, 3, 32), (h - 10, 0, 32)):
            reads.clear()
            got = store.read_region(key, top, left, size, size)
            np.testing.assert_array_equal(got, img[top:top + size, left:left + size])
            np.testing.assert_array_equal(got, through_lmdb.read_region(key, top, left, size, size))
            assert reads == [(min(top + size, h) - top) * w * 3]  # one read: the window's rows
        np.testing.assert_array_equal(store.read(key), img)


def test_offsets_go_stale_on_a_later_write_and_are_renewed_by_finish(tmp_path, rng):
    path = tmp_path / "s.lmdb"
    first = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    write_store(path, {"a": first}, encoding="raw")
    assert LmdbStore(path)._load_offsets()
    w = LmdbWriter(path, encoding="raw")
    w.load()
    w.begin("params")
    second = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    w.write("a", second)
    w.flush()
    w.close()  # not finished: the table no longer describes the file
    store = LmdbStore(path, allow_incomplete=True)
    assert store._load_offsets() == {}
    np.testing.assert_array_equal(store.read("a"), second)
    store.close()
    w = LmdbWriter(path, encoding="raw")
    w.load()
    w.begin("params")
    w.finish()
    w.close()
    store = LmdbStore(path)
    assert store._load_offsets()
    np.testing.assert_array_equal(store.read_region("a", 3, 4, 20, 20), second[3:23, 4:24])
