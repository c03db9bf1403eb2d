"""Folder stores: key naming of the usual SR layouts, pairing by key, errors."""
import shutil

import numpy as np
import pytest

from srprep.errors import StoreError
from srprep.io.images import write_image
from srprep.io.stores import FolderStore, FolderWriter, open_store, paired_keys


def test_benchmark_layout_keys_strip_the_scale_suffix(ref_data):
    lr = FolderStore(ref_data / "benchmark/Set5/LR_bicubic/X3", scale=3)
    hr = FolderStore(ref_data / "benchmark/Set5/HR")
    assert lr.naming == "suffix" and hr.naming == "same"
    assert sorted(lr.keys()) == sorted(hr.keys()) == ["baby", "bird", "butterfly", "head", "woman"]
    assert lr.shape("woman") == (114, 76, 3) and lr.read("woman").shape == (114, 76, 3)
    assert hr.shape("baby") == (512, 512, 3)
    assert paired_keys({"hr": hr, "lr": lr}) == hr.keys()


def test_div2k_and_same_name_layouts(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    for name in ("0001x2.png", "0002x2.png"):
        write_image(tmp_path / "div2k" / name, img)
    for name in ("000123.png", "000124.png"):
        write_image(tmp_path / "aim" / name, img)
    assert FolderStore(tmp_path / "div2k", scale=2).keys() == ["0001", "0002"]
    assert FolderStore(tmp_path / "div2k").keys() == ["0001x2", "0002x2"]  # no scale given: same names
    assert FolderStore(tmp_path / "aim", scale=2).keys() == ["000123", "000124"]


def test_two_files_with_one_key_are_refused(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    write_image(tmp_path / "a.png", img)
    write_image(tmp_path / "a.bmp", img)
    with pytest.raises(StoreError, match="two files give the key 'a'"):
        FolderStore(tmp_path)


def test_hidden_and_non_image_files_are_ignored(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".srprep").mkdir()
    (tmp_path / ".b.png").write_bytes(b"")
    assert FolderStore(tmp_path).keys() == ["a"]


def test_pairing_reports_keys_without_counterpart(ref_data, tmp_path):
    shutil.copytree(ref_data / "benchmark/Set5/LR_bicubic/X2", tmp_path / "X2")
    (tmp_path / "X2/birdx2.png").unlink()
    hr = FolderStore(ref_data / "benchmark/Set5/HR")
    lr = FolderStore(tmp_path / "X2", scale=2)
    with pytest.raises(StoreError, match=r"hr: 1 keys have no counterpart in lr: \['bird'\]"):
        paired_keys({"hr": hr, "lr": lr})
    assert "bird" not in paired_keys({"hr": hr, "lr": lr}, allow_missing=True)


def test_fingerprints_follow_file_changes(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    write_image(tmp_path / "a.png", img)
    write_image(tmp_path / "b.png", img)
    s1 = FolderStore(tmp_path)
    fp, fa, fb = s1.fingerprint(), s1.item_fingerprint("a"), s1.item_fingerprint("b")
    write_image(tmp_path / "a.png", img + 1)
    s2 = FolderStore(tmp_path)
    assert s2.item_fingerprint("b") == fb
    assert s2.item_fingerprint("a") != fa and s2.fingerprint() != fp


def test_writer_and_array_items(tmp_path):
    w = FolderWriter(tmp_path, ext=".png", suffix="x4")
    assert w.write("baby", np.full((4, 6, 3), 7, np.uint8)) == "babyx4.png"
    arr = np.random.default_rng(0).random((4, 6, 3), dtype=np.float32)
    FolderWriter(tmp_path / "f", ext=".npy").write("baby", arr)
    s = FolderStore(tmp_path, scale=4)
    assert s.keys() == ["baby"] and s.read("baby")[0, 0, 0] == 7
    f = open_store(tmp_path / "f")
    np.testing.assert_array_equal(f.read("baby"), arr)
    assert f.shape("baby") == (4, 6, 3)


def test_open_store_errors(tmp_path):
    with pytest.raises(StoreError, match="no such file"):
        open_store(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(StoreError, match="not a store"):
        open_store(tmp_path / "file.txt")
