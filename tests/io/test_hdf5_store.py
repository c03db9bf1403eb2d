"""HDF5 stores: pixel-exact round trips in every layout, resume from a partial file with CRC checks,
starting afresh from an unreadable or re-laid-out file, field selection, pickling and fork."""
import json
import multiprocessing
import pickle
import time

import h5py
import numpy as np
import pytest

from srprep.errors import StoreError
from srprep.io.hdf5_store import Hdf5Field, Hdf5Store, Hdf5Writer, fields_of
from srprep.io.images import encode_image, read_image
from srprep.io.stores import open_store
from tests.io.threaded import assert_threads_read_at_once


@pytest.fixture(scope="module")
def photos(samples):
    """HR: 96x96 crops of real photos (one shape); X2: their LR-sized halves of varying sizes."""
    paths = sorted((samples / "set5").glob("*.png")) + sorted((samples / "kodak").glob("*.png"))[:3]
    imgs = {p.stem: read_image(p) for p in paths}
    hr = {k: np.ascontiguousarray(v[:96, :96]) for k, v in imgs.items()}
    var = {k: np.ascontiguousarray(v[: 40 + i, : 50 + 2 * i]) for i, (k, v) in enumerate(imgs.items())}
    return hr, var


def layout(hr, var):
    return [Hdf5Field("HR", tuple(hr), tuple(v.shape for v in hr.values()), {"scale": 1}),
            Hdf5Field("X2", tuple(var), tuple(v.shape for v in var.values()), {"scale": 2})]


def records(key, hr, var, encoding):
    enc = (lambda a: encode_image(a, ".png")) if encoding == "png" else (lambda a: a)
    return {"HR": [(key, enc(hr[key]), hr[key].shape)], "X2": [(key, enc(var[key]), var[key].shape)]}


def write(path, hr, var, *, encoding="raw", compression=None, keys=None, finish=True, flush_every=None):
    w = Hdf5Writer(path, layout(hr, var), encoding=encoding, compression=compression, attrs={"convention": "test"})
    params, done = w.load()
    w.begin("P")
    for i, k in enumerate(keys if keys is not None else hr):
        w.add(k, "fp-" + k, records(k, hr, var, encoding))
        if flush_every and (i + 1) % flush_every == 0:
            w.flush()
    if finish:
        w.finish()
    w.close()
    return params, done


@pytest.mark.parametrize("encoding,compression,hr_layout,x2_layout", [
    ("raw", None, "stacked", "per-key"),
    ("raw", "gzip", "stacked", "per-key"),
    ("raw", "lzf", "stacked", "per-key"),
    ("png", None, "png", "png"),
])
def test_round_trip_is_pixel_exact(tmp_path, photos, encoding, compression, hr_layout, x2_layout):
    hr, var = photos
    write(tmp_path / "data.h5", hr, var, encoding=encoding, compression=compression)
    assert not (tmp_path / "data.h5.partial").exists()
    assert fields_of(tmp_path / "data.h5") == ["HR", "X2"]
    for field, src, lay in (("HR", hr, hr_layout), ("X2", var, x2_layout)):
        store = Hdf5Store(tmp_path / "data.h5", field)
        assert store.layout == lay and store.keys() == list(src)
        assert store.field_attrs["scale"] == (1 if field == "HR" else 2)
        for k, img in src.items():
            out = store.read(k)
            assert store.shape(k) == img.shape and out.dtype == np.uint8
            np.testing.assert_array_equal(out, img)
            np.testing.assert_array_equal(store.read_region(k, 3, 5, 20, 30), img[3:23, 5:35])
    with h5py.File(tmp_path / "data.h5") as f:
        assert f.attrs["complete"] and f.attrs["convention"] == "test" and f.attrs["format"] == "srprep-hdf5"
        assert [k.decode() for k in f["HR/keys"][()]] == list(hr)
        if hr_layout == "stacked":
            assert f["HR/images"].shape == (len(hr), 96, 96, 3) and f["HR/images"].chunks == (1, 96, 96, 3)
            assert f["HR/images"].compression == compression
    assert isinstance(open_store(tmp_path / "data.h5/X2"), Hdf5Store)
    assert open_store(tmp_path / "data.h5", field="HR").field == "HR"


def test_resume_keeps_flushed_items_and_checks_them(tmp_path, photos):
    hr, var = photos
    keys = list(hr)
    path = tmp_path / "data.h5"
    w = Hdf5Writer(path, layout(hr, var))
    w.load()
    w.begin("P")
    for k in keys[:4]:
        w.add(k, "fp-" + k, records(k, hr, var, "raw"))
    w.flush()
    w.add(keys[4], "fp", records(keys[4], hr, var, "raw"))  # written but never flushed: not done
    w._file.close()  # what a kill leaves: no final flush, no rename
    w._file = None
    assert not path.exists() and (tmp_path / "data.h5.partial").exists()
    with pytest.raises(StoreError, match="incomplete HDF5 store"):
        Hdf5Store(tmp_path / "data.h5.partial", "HR")
    # damage one done item: its CRC no longer matches, so it is redone
    with h5py.File(tmp_path / "data.h5.partial", "r+") as f:
        f["HR/images"][1] = 0
    params, done = Hdf5Writer(path, layout(hr, var)).load()
    assert params == "P" and sorted(done) == sorted([keys[0], keys[2], keys[3]])
    assert done[keys[0]] == ("fp-" + keys[0], [])
    # finish the rest and read everything back
    write(path, hr, var, keys=[k for k in keys if k not in done])
    for k in keys:
        np.testing.assert_array_equal(Hdf5Store(path, "HR").read(k), hr[k])
        np.testing.assert_array_equal(Hdf5Store(path, "X2").read(k), var[k])


def test_unreadable_partial_file_starts_afresh(tmp_path, photos):
    hr, var = photos
    path = tmp_path / "data.h5"
    (tmp_path / "data.h5.partial").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # a torn header
    params, done = write(path, hr, var)
    assert (params, done) == (None, {})
    np.testing.assert_array_equal(Hdf5Store(path, "HR").read("baby"), hr["baby"])


def test_changed_layout_starts_afresh_and_same_layout_resumes_from_final(tmp_path, photos):
    hr, var = photos
    path = tmp_path / "data.h5"
    write(path, hr, var)
    # same keys and shapes: the finished file is reused (every item already done)
    params, done = Hdf5Writer(path, layout(hr, var)).load()
    assert params == "P" and sorted(done) == sorted(hr)
    # one key fewer: a different layout, nothing is reused
    small_hr = {k: v for k, v in list(hr.items())[:-1]}
    small_var = {k: var[k] for k in small_hr}
    w = Hdf5Writer(path, layout(small_hr, small_var))
    w.partial.write_bytes(path.read_bytes())  # as if a run with the old layout had been interrupted
    assert w.load() == (None, {})


def test_field_selection_and_errors(tmp_path, photos):
    hr, var = photos
    write(tmp_path / "data.h5", hr, var)
    with pytest.raises(StoreError, match=r"holds fields \['HR', 'X2'\]; say which one"):
        Hdf5Store(tmp_path / "data.h5")
    with pytest.raises(StoreError, match="no field 'X4'"):
        Hdf5Store(tmp_path / "data.h5", "X4")
    with pytest.raises(StoreError, match="no item 'nope'"):
        Hdf5Store(tmp_path / "data.h5", "HR").read("nope")
    w = Hdf5Writer(tmp_path / "other.h5", layout(hr, var))
    w.begin("P")
    with pytest.raises(StoreError, match="not in the planned layout"):
        w.add("x", "fp", {"HR": [("x", hr["baby"], (96, 96, 3))]})
    with pytest.raises(StoreError, match="has shape"):
        w.add("baby", "fp", {"HR": [("baby", hr["baby"][:50], (50, 96, 3))]})
    w.close()


def _read_in_child(store, key, queue):
    queue.put(int(store.read(key).sum()))


def test_pickled_and_forked_handles(tmp_path, photos):
    hr, var = photos
    write(tmp_path / "data.h5", hr, var)
    store = Hdf5Store(tmp_path / "data.h5", "HR")
    total = int(store.read("bird").sum())  # the file is open in the parent at the fork
    clone = pickle.loads(pickle.dumps(store))
    assert clone._handle is None and int(clone.read("bird").sum()) == total
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_read_in_child, args=(store, "bird", q)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [q.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    assert got == [total, total] and int(store.read("bird").sum()) == total


class _SlowFile(h5py.File):
    """An h5py file whose groups take a while to look up: widens the time between opening the file and
    holding its dataset, the window in which a second thread must not see a half-opened store."""

    def __getitem__(self, name):
        time.sleep(0.05)
        return super().__getitem__(name)


@pytest.mark.parametrize("field, layout_", [("HR", "stacked"), ("X2", "per-key")])
def test_threads_reading_a_fresh_store_at_once(tmp_path, photos, monkeypatch, field, layout_):
    """Threads sharing one store (identify reads with a thread pool) all read whole pixels when the first
    reads open the file together (a thread once saw the file open but its dataset not yet: a TypeError)."""
    hr, var = photos
    write(tmp_path / "data.h5", hr, var)
    want = {k: (hr if field == "HR" else var)[k] for k in hr}
    store = Hdf5Store(tmp_path / "data.h5", field)
    assert store.layout == layout_
    monkeypatch.setattr(h5py, "File", _SlowFile)
    assert_threads_read_at_once(store, want)


def test_done_records_are_json_with_crcs(tmp_path, photos):
    hr, var = photos
    write(tmp_path / "data.h5", hr, var)
    with h5py.File(tmp_path / "data.h5") as f:
        recs = [json.loads(r) for r in f[".srprep/done"][()]]
        assert f.attrs["done_count"] == len(recs) == len(hr)
    assert set(recs[0]) == {"item", "fp", "crc"} and set(recs[0]["crc"]) == {"HR", "X2"}
