"""srprep crop: one HR grid for every field, BasicSR's positions and keys, LR crops that are the downsampled
HR crops, small images, and clear errors for bad input."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srprep.errors import ImageError, StoreError
from srprep.io.images import read_image, write_image
from srprep.ops.grid import modcrop
from srprep.ops.grid import grid_positions
from srprep.stages.crop import CropOptions, OptionsError, crop, infer_scale

REPO = Path(__file__).resolve().parents[2]
SET5 = ["baby", "bird", "butterfly", "head", "woman"]


def basicsr_positions(length, size, step, thresh):
    """extract_subimages.py's rule, restated independently with np.arange."""
    space = np.arange(0, length - size + 1, step)
    if length - (space[-1] + size) > thresh:
        space = np.append(space, length - size)
    return [int(v) for v in space]


@settings(max_examples=300, deadline=None)
@given(length=st.integers(1, 3000), size=st.integers(1, 600), step=st.integers(1, 600), thresh=st.integers(0, 100))
def test_grid_positions_is_basicsr_rule(length, size, step, thresh):
    got = grid_positions(length, size, step, thresh)
    assert got == ([] if length < size else basicsr_positions(length, size, step, thresh))


def test_grid_positions_examples():
    assert grid_positions(1356, 480, 240) == [0, 240, 480, 720, 876]  # DIV2K height
    assert grid_positions(2040, 480, 240) == [0, 240, 480, 720, 960, 1200, 1440, 1560]
    assert grid_positions(1356, 480, 240, thresh=200) == [0, 240, 480, 720]  # 156 px left over <= 200


def sub_files(folder):
    return sorted(p.name for p in Path(folder).glob("*.png"))


def expected_boxes(hr_shape, size, step, lcm):
    eh, ew = hr_shape[0] // lcm * lcm, hr_shape[1] // lcm * lcm
    return [(y, x) for y in grid_positions(eh, size, step) for x in grid_positions(ew, size, step)]


def test_set5_counts_positions_and_pixels_follow_one_grid(ref_data, tmp_path):
    """Real benchmark Set5 with its MATLAB LR at x2/x3/x4: counts, keys and pixels follow the HR grid."""
    s5 = ref_data / "benchmark/Set5"
    rep = crop(s5 / "HR", [s5 / "LR_bicubic/X2", s5 / "LR_bicubic/X3", s5 / "LR_bicubic/X4"], tmp_path / "sub",
               CropOptions(96, 48), jobs=2, progress=False)
    total = 0
    for name in SET5:
        hr = read_image(s5 / f"HR/{name}.png")
        boxes = expected_boxes(hr.shape, 96, 48, 12)  # lcm(2, 3, 4) = 12, BasicSR's GTmod12
        total += len(boxes)
        keys = [f"{name}_s{i:03d}" for i in range(1, len(boxes) + 1)]
        assert [k for k in sub_files(tmp_path / "sub/HR") if k.startswith(name + "_")] == [k + ".png" for k in keys]
        for s in (2, 3, 4):
            lr = read_image(s5 / f"LR_bicubic/X{s}/{name}x{s}.png")
            assert [k for k in sub_files(tmp_path / f"sub/X{s}") if k.startswith(name + "_")] == \
                [f"{k}x{s}.png" for k in keys]
            for k, (y, x) in zip(keys, boxes):
                np.testing.assert_array_equal(read_image(tmp_path / f"sub/X{s}/{k}x{s}.png"),
                                              lr[y // s:(y + 96) // s, x // s:(x + 96) // s])
        for k, (y, x) in zip(keys, boxes):
            np.testing.assert_array_equal(read_image(tmp_path / f"sub/HR/{k}.png"), hr[y:y + 96, x:x + 96])
    assert rep.subimages == total and rep.images == 5 and rep.fields == ["HR", "X2", "X3", "X4"]
    assert f"{total} sub-images per field" in rep.summary()


@pytest.mark.parametrize("s", [2, 3, 4])
def test_matlab_lr_crops_equal_crops_cut_on_the_lr_own_grid(ref_data, tmp_path, s):
    """With one scale, BasicSR's rule applied to the MATLAB LR itself (size/s, step/s) gives exactly
    srprep's LR sub-images, in the same order: the HR grid divided by s is the LR grid."""
    s5 = ref_data / "benchmark/Set5"
    size, step = 24 * s, 12 * s
    crop(s5 / "HR", [s5 / f"LR_bicubic/X{s}"], tmp_path / "sub", CropOptions(size, step), jobs=1, progress=False)
    for name in SET5:
        lr = read_image(s5 / f"LR_bicubic/X{s}/{name}x{s}.png")
        own = [lr[y:y + 24, x:x + 24] for y in basicsr_positions(lr.shape[0], 24, 12, 0)
               for x in basicsr_positions(lr.shape[1], 24, 12, 0)]
        ours = [read_image(tmp_path / f"sub/X{s}/{name}_s{i:03d}x{s}.png") for i in range(1, len(own) + 1)]
        assert not (tmp_path / f"sub/X{s}/{name}_s{len(own) + 1:03d}x{s}.png").exists()
        for a, b in zip(own, ours):
            np.testing.assert_array_equal(a, b)


def _make_lr(hr, s):
    """LR as srprep downsample makes it (uint8 MATLAB convention of modcrop(HR, s))."""
    try:
        from srprep.stages.downsample import DownsampleOptions, downsample_image

        return downsample_image(hr, s, DownsampleOptions())
    except ImportError:
        try:
            from srprep.ops.imresize import imresize_matlab
        except ImportError:
            pytest.skip("srprep.ops.imresize.imresize_matlab is not importable yet")
        return imresize_matlab(modcrop(hr, s), 1 / s)


def test_lr_crops_are_the_downsampled_hr_crops(samples, tmp_path):
    """LR made by srprep's MATLAB bicubic: each LR sub-image equals imresize of its HR sub-image away from
    the crop border (the kernel reaches 2 LR pixels past it), i.e. the LR crop is the HR crop, downsampled."""
    try:
        from srprep.ops.imresize import imresize_matlab
    except ImportError:
        pytest.skip("srprep.ops.imresize.imresize_matlab is not importable yet")
    src = tmp_path / "data"
    names = ["kodim01", "kodim05"]
    for n in names:
        hr = read_image(samples / f"kodak/{n}.png")[:, :461]  # odd width: modcrop matters
        write_image(src / f"HR/{n}.png", hr)
        for s in (2, 4):
            write_image(src / f"X{s}/{n}x{s}.png", _make_lr(hr, s))
    crop(src / "HR", [src / "X2", src / "X4"], tmp_path / "sub", CropOptions(120, 60), jobs=1, progress=False)
    m = 3
    checked = 0
    for p in sorted((tmp_path / "sub/HR").glob("*.png")):
        hr_crop = read_image(p)
        for s in (2, 4):
            lr_crop = read_image(tmp_path / f"sub/X{s}/{p.stem}x{s}.png")
            assert lr_crop.shape == (120 // s, 120 // s, 3)
            np.testing.assert_array_equal(imresize_matlab(hr_crop, 1 / s)[m:-m, m:-m], lr_crop[m:-m, m:-m])
            checked += 1
    assert checked == 2 * 2 * 8 * 7  # 500x461 -> 500x460 (mod 4): 8 rows x 7 columns of crops each


def test_small_images_error_keep_skip(samples, tmp_path):
    src = tmp_path / "data"
    big = read_image(samples / "kodak/kodim02.png")
    write_image(src / "HR/big.png", big[:200, :200])
    write_image(src / "HR/tiny.png", big[:90, :130])
    write_image(src / "X2/bigx2.png", big[:100, :100])
    write_image(src / "X2/tinyx2.png", big[:45, :65])
    with pytest.raises(ImageError, match=r"tiny.png: 90x130 image \(cropped to a multiple of 2\) is smaller than "
                                         r"the 96x96 crop; pass --small keep"):
        crop(src / "HR", [src / "X2"], tmp_path / "a", CropOptions(96, 48), progress=False)
    assert not (tmp_path / "a").exists()
    rep = crop(src / "HR", [src / "X2"], tmp_path / "k", CropOptions(96, 48, small="keep"), jobs=1, progress=False)
    kept = sub_files(tmp_path / "k/HR")
    assert "tiny_s001.png" in kept and "tiny_s002.png" not in kept
    np.testing.assert_array_equal(read_image(tmp_path / "k/HR/tiny_s001.png"), big[:90, :130])
    np.testing.assert_array_equal(read_image(tmp_path / "k/X2/tiny_s001x2.png"), big[:45, :65])
    assert "1 smaller than 96x96 kept whole: tiny" in rep.summary()
    rep = crop(src / "HR", [src / "X2"], tmp_path / "s", CropOptions(96, 48, small="skip"), jobs=1, progress=False)
    assert not any(n.startswith("tiny") for n in sub_files(tmp_path / "s/HR"))
    assert rep.subimages == 16 and "1 smaller than 96x96 skipped: tiny" in rep.summary()


@pytest.fixture
def set5_copy(ref_data, tmp_path):
    s5 = ref_data / "benchmark/Set5"
    shutil.copytree(s5 / "HR", tmp_path / "HR")
    shutil.copytree(s5 / "LR_bicubic/X2", tmp_path / "X2")
    return tmp_path


def test_missing_lr_names_the_key(set5_copy):
    (set5_copy / "X2/birdx2.png").unlink()
    with pytest.raises(StoreError, match=r"X2: no image for 1 HR key\(s\): bird \(e\.g\. .*HR/bird.png has no"):
        crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "out", CropOptions(96, 48), progress=False)


def test_mismatched_pair_size_names_both_files(set5_copy):
    lr = read_image(set5_copy / "X2/headx2.png")
    write_image(set5_copy / "X2/headx2.png", lr[:-1])
    with pytest.raises(StoreError, match=r"X2: .*X2/headx2.png is 139x140 but HR .*HR/head.png is 280x280: at x2 "
                                         r"it should be 140x140"):
        crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "out", CropOptions(96, 48), progress=False)


def test_duplicate_keys_and_bad_options(set5_copy):
    shutil.copy(set5_copy / "HR/baby.png", set5_copy / "HR/baby.bmp")
    with pytest.raises(StoreError, match="two files give the key 'baby'"):
        crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "out", progress=False)
    (set5_copy / "HR/baby.bmp").unlink()
    with pytest.raises(OptionsError, match="--size 99 is not a multiple of scale 2"):
        crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "out", CropOptions(99, 48), progress=False)
    with pytest.raises(OptionsError, match="--step 25 is not a multiple of scale 2"):
        crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "out", CropOptions(96, 25), progress=False)
    with pytest.raises(OptionsError, match="two inputs for X2"):
        crop(set5_copy / "HR", [set5_copy / "X2", f"{set5_copy / 'X2'}:2"], set5_copy / "out", progress=False)


def test_unwritable_destination(set5_copy):
    (set5_copy / "file").write_text("x")
    with pytest.raises(StoreError, match=r"file: exists and is not a folder"):
        crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "file", CropOptions(96, 48), progress=False)
    with pytest.raises(StoreError, match=r"file/out: cannot create it: .*file is a file"):
        crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "file/out", CropOptions(96, 48), progress=False)


def test_scale_inference(set5_copy):
    assert infer_scale(set5_copy / "X2") == 2
    shutil.copytree(set5_copy / "X2", set5_copy / "lowres")
    assert infer_scale(set5_copy / "lowres") == 2  # from the x2 suffix of every file
    (set5_copy / "plain").mkdir()
    for p in (set5_copy / "X2").glob("*.png"):
        shutil.copy(p, set5_copy / "plain" / p.name.replace("x2", ""))
    assert infer_scale(set5_copy / "plain") is None
    with pytest.raises(StoreError, match="cannot tell its scale .* give it as .*plain:2"):
        crop(set5_copy / "HR", [set5_copy / "plain"], set5_copy / "out", CropOptions(96, 48), progress=False)
    rep = crop(set5_copy / "HR", [f"{set5_copy / 'plain'}:2"], set5_copy / "out", CropOptions(96, 48), jobs=1,
               progress=False)
    assert rep.fields == ["HR", "X2"] and (set5_copy / "out/X2/baby_s001x2.png").exists()


def test_cached_resumable_and_parallel_runs_agree(set5_copy):
    a = crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "a", CropOptions(96, 48), jobs=1, progress=False)
    b = crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "b", CropOptions(96, 48), jobs=2, progress=False)
    assert a.step.processed == b.step.processed == 5
    for sub in ("HR", "X2"):
        names = sub_files(set5_copy / "a" / sub)
        assert names == sub_files(set5_copy / "b" / sub) and len(names) == a.subimages
        for n in names[::17]:
            assert (set5_copy / "a" / sub / n).read_bytes() == (set5_copy / "b" / sub / n).read_bytes()
    again = crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "a", CropOptions(96, 48), progress=False)
    assert again.step.status == "up to date"
    # a changed grid redoes everything and leaves no sub-image of the old grid behind
    new = crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "a", CropOptions(128, 128), jobs=1, progress=False)
    assert new.step.processed == 5 and new.subimages < a.subimages
    assert len(sub_files(set5_copy / "a/HR")) == len(sub_files(set5_copy / "a/X2")) == new.subimages
    assert "baby_s016.png" in sub_files(set5_copy / "a/HR") and "baby_s017.png" not in sub_files(set5_copy / "a/HR")


def test_packed_stores_are_inputs_too(set5_copy):
    from srprep.stages.pack import pack

    packed = set5_copy.parent / "packed"  # beside the dataset: a store inside its own input is refused
    pack(set5_copy, packed, progress=False, jobs=1)
    rep = crop(packed / "HR.lmdb", [packed / "X2.lmdb"], set5_copy / "from_lmdb",
               CropOptions(96, 48), jobs=1, progress=False)
    ref = crop(set5_copy / "HR", [set5_copy / "X2"], set5_copy / "from_png", CropOptions(96, 48), jobs=1,
               progress=False)
    assert rep.subimages == ref.subimages
    for sub in ("HR", "X2"):
        names = sub_files(set5_copy / "from_png" / sub)
        assert sub_files(set5_copy / "from_lmdb" / sub) == names
        for n in names[::13]:
            np.testing.assert_array_equal(read_image(set5_copy / "from_lmdb" / sub / n),
                                          read_image(set5_copy / "from_png" / sub / n))


def srprep(*args):
    return subprocess.run([sys.executable, "-m", "srprep", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_cli_end_to_end_and_one_line_errors(set5_copy):
    proc = srprep("crop", set5_copy / "HR", "--lr", set5_copy / "X2", set5_copy / "out", "--size", "96",
                  "--step", "48", "-j", "1")
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"crop: 5 items, 5 processed, 0 reused.*; (\d+) sub-images per field \(HR, X2\) from 5 images",
                  proc.stdout)
    assert m and int(m.group(1)) == len(sub_files(set5_copy / "out/HR"))
    proc = srprep("crop", set5_copy / "HR", "--lr", set5_copy / "X2", set5_copy / "out2", "--size", "97")
    assert proc.returncode == 1 and proc.stderr.strip() == \
        "error: --size 97 is not a multiple of scale 2: the LR box would not fall on LR pixels (use a multiple of 2)"
    proc = srprep("crop", set5_copy / "HR", "--lr", set5_copy / "X2", set5_copy / "out3")  # 480 > Set5 sizes
    assert proc.returncode == 1 and "smaller than the 480x480 crop" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = srprep("crop", "--help")
    assert "Example" in proc.stdout and "--small" in proc.stdout


def test_crop_into_the_folder_of_its_inputs_is_refused(set5_copy):
    before = sorted(p.relative_to(set5_copy) for p in set5_copy.rglob("*"))
    proc = srprep("crop", set5_copy / "HR", "--lr", set5_copy / "X2", set5_copy, "--size", "96", "--step", "48")
    assert proc.returncode == 1
    assert f"error: {set5_copy / 'HR'}: the output of crop is its input {set5_copy / 'HR'}" in proc.stderr
    assert sorted(p.relative_to(set5_copy) for p in set5_copy.rglob("*")) == before
