"""srprep identify: the shared benchmark sets are named as their provenance says (EDSR Set5/B100 LR ->
matlab-uint8, BasicSR LRbicx2 -> matlab-im2double, RCAN LRBI -> closest matlab-uint8, not exact); LR made
here with pillow-simd, plain Pillow, OpenCV INTER_AREA and torch antialias -> each named exactly; a folder of
two resizers -> mixed; pairing by key with suffixes; crop conventions; early exit; JSON; sheet; errors."""
import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from srprep.cli import main
from srprep.errors import StoreError
from srprep.io.images import read_image, write_image
from srprep.ops.grid import modcrop
from srprep.ops.imresize import imresize_matlab
from srprep.ops.resizers import RESIZERS, imresize_basicsr, resize_with
from srprep.stages.identify import (IdentifyOptions, ImageResult, crop_candidates, difference_map, identify,
                                    identify_pair, overall_verdict, pair_keys)
from srprep.stages.pack import pack
from tests.plain_pillow import plain_pillow_resize


def _pillow_simd(hr, s):
    h, w = hr.shape[0] // s, hr.shape[1] // s
    return np.asarray(Image.fromarray(hr).resize((w, h), Image.BICUBIC))


def _cv2_area(hr, s):
    return cv2.resize(hr, (hr.shape[1] // s, hr.shape[0] // s), interpolation=cv2.INTER_AREA)


def _torch_aa(hr, s):
    x = torch.from_numpy(hr.transpose(2, 0, 1).copy()).float()[None] / 255  # as torchvision's to_tensor
    y = torch.nn.functional.interpolate(x, size=(hr.shape[0] // s, hr.shape[1] // s), mode="bicubic",
                                        antialias=True)
    return (y[0].clamp(0, 1) * 255).round().byte().numpy().transpose(1, 2, 0)  # as a user saving a PNG


@pytest.fixture(scope="module")
def photos(samples):
    """Four bundled photos, HR cropped to a multiple of 12 so every scale below is a plain modcrop."""
    paths = [samples / "kodak" / "kodim01.png", samples / "kodak" / "kodim05.png", samples / "set5" / "bird.png",
             samples / "set5" / "woman.png"]
    return {p.stem: np.ascontiguousarray(modcrop(read_image(p), 12)) for p in paths}


def _write_set(root, photos, s, make, suffix="x{s}"):
    for name, hr in photos.items():
        write_image(root / "HR" / f"{name}.png", hr)
        write_image(root / "LR" / f"{name}{suffix.format(s=s)}.png", make(hr, s))
    return root / "HR", root / "LR"


# ------------------------------------------------------------------------------------------ shared data
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_benchmark_set5_is_matlab_uint8_exact(ref_data, scale):
    rep = identify(data=ref_data / "benchmark" / "Set5", scale=scale, progress=False)
    v = rep.verdict
    assert (v.method, v.exact, v.match, v.crop) == ("matlab-uint8", True, 1.0, "modcrop-s")
    assert [r.key for r in rep.images] == ["baby", "bird", "butterfly", "head", "woman"]
    assert all(r.method == "matlab-uint8" and r.exact and r.max_diff == 0 for r in rep.images)
    # the other MATLAB convention differs in 10-15 % of values: clearly out, it stopped after the sample
    assert all(r.candidates["matlab-im2double"] < 0.95 and "matlab-im2double" in r.stopped for r in rep.images)


def test_basicsr_lrbicx2_is_matlab_im2double_exact(ref_data):
    rep = identify(data=ref_data / "basicsr_im2double" / "Set5", scale=2, progress=False)
    assert (rep.verdict.method, rep.verdict.exact) == ("matlab-im2double", True)
    # GTmod12 is a multiple of 12: every convention gives the same pixels, the first is named
    assert rep.verdict.crop == "modcrop-s" and rep.verdict.crop_alternatives == ("modcrop-12", "none")
    # BasicSR's float32 port: all but float ties. basicsr 1.4.2's own imresize, run on these files (torch 2.13
    # CPU with MKL, AVX2), rounded as here, gave 99.9925 % (the port's bytes equal the package's); another
    # BLAS may break a few ties differently.
    pooled = sum(r.candidates["basicsr"] * r.values for r in rep.images) / sum(r.values for r in rep.images)
    assert 0.9998 < pooled < 1


def test_basicsr_lr_from_uncropped_hr_detects_modcrop_12(ref_data):
    rep = identify(hr=ref_data / "benchmark" / "Set5" / "HR", lr=ref_data / "basicsr_im2double" / "Set5" /
                   "LRbicx2", scale=2, progress=False)
    assert (rep.verdict.method, rep.verdict.exact, rep.verdict.crop) == ("matlab-im2double", True, "modcrop-12")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_rcan_lrbi_is_closest_matlab_uint8_not_exact(shared_data, scale):
    rep = identify(hr=shared_data / "benchmark" / "Set5" / "HR", lr=shared_data / "rcan_LRBI" / "Set5" / f"x{scale}",
                   scale=scale, progress=False)
    v = rep.verdict
    assert (v.method, v.exact) == ("matlab-uint8", False) and 0.97 <= v.match < 1
    assert [r.lr_key for r in rep.images][0] == f"baby_LRBI_x{scale}"
    assert v.describe().startswith("closest: matlab-uint8, 9") and "not exact" in v.describe()
    assert "closest: matlab-uint8" in rep.summary()


@pytest.mark.slow
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_b100_is_matlab_uint8_exact(shared_data, scale):
    rep = identify(data=shared_data / "benchmark" / "B100", scale=scale, progress=False)
    assert len(rep.images) == 100
    assert (rep.verdict.method, rep.verdict.exact, rep.verdict.crop) == ("matlab-uint8", True, "modcrop-s")


# --------------------------------------------------------------------------------- LR made in the test
@pytest.mark.parametrize("name,make", [("pillow-simd-bicubic", _pillow_simd), ("cv2-area", _cv2_area),
                                       ("torch-bicubic-antialias", _torch_aa)])
@pytest.mark.parametrize("scale", [2, 3])
def test_lr_made_here_is_named_exactly(photos, tmp_path, name, make, scale):
    hr_dir, lr_dir = _write_set(tmp_path, photos, scale, make)
    rep = identify(hr=hr_dir, lr=lr_dir, scale=scale, progress=False)
    assert (rep.verdict.method, rep.verdict.exact, rep.verdict.match) == (name, True, 1.0)
    assert all(r.method == name for r in rep.images)


def test_plain_pillow_bicubic_is_named_exactly(photos, tmp_path):
    _, ref = plain_pillow_resize({n: (hr, (hr.shape[0] // 4, hr.shape[1] // 4), "bicubic") for n, hr in photos.items()})
    for n, hr in photos.items():
        write_image(tmp_path / "HR" / f"{n}.png", hr)
        write_image(tmp_path / "LR" / f"{n}x4.png", ref[n])
    rep = identify(hr=tmp_path / "HR", lr=tmp_path / "LR", scale=4, progress=False)
    assert (rep.verdict.method, rep.verdict.exact) == ("pil-bicubic", True)
    # pillow-simd rounds differently in a few values: close, not exact (on some image at least)
    simd = [r.candidates["pillow-simd-bicubic"] for r in rep.images]
    assert all(m > 0.99 for m in simd) and min(simd) < 1


def test_a_folder_of_two_resizers_is_mixed(photos, tmp_path):
    names = list(photos)
    for i, n in enumerate(names):
        write_image(tmp_path / "HR" / f"{n}.png", photos[n])
        write_image(tmp_path / "LR" / f"{n}_x2.png", (_cv2_area if i < 3 else _pillow_simd)(photos[n], 2))
    rep = identify(hr=tmp_path / "HR", lr=tmp_path / "LR", scale=2, progress=False)
    v = rep.verdict
    assert v.method == "mixed" and v.exact and v.counts == {"cv2-area": 3, "pillow-simd-bicubic": 1}
    assert v.describe() == "mixed: cv2-area 3, pillow-simd-bicubic 1"
    assert [r.method for r in rep.images] == ["cv2-area"] * 3 + ["pillow-simd-bicubic"]


def test_squeezed_uncropped_hr_is_crop_none(photos):
    hr = np.ascontiguousarray(photos["kodim01"][:101, :147])  # not a multiple of 2: the resize squeezes it
    lr = cv2.resize(hr, (147 // 2, 101 // 2), interpolation=cv2.INTER_AREA)
    r = identify_pair(hr, lr, 2)
    assert (r.method, r.exact, r.crop) == ("cv2-area", True, "none")
    lr_cropped = cv2.resize(hr[:100, :146], (73, 50), interpolation=cv2.INTER_AREA)
    assert identify_pair(hr, lr_cropped, 2).crop == "modcrop-s"


def test_uncropped_matlab_ceil_size_is_crop_none(photos):
    hr = np.ascontiguousarray(photos["kodim05"][:101, :147])
    lr = imresize_matlab(hr, 1 / 3)  # MATLAB imresize(HR, 1/3) without a crop: ceil(101/3) x ceil(147/3)
    assert lr.shape[:2] == (34, 49)
    r = identify_pair(hr, lr, 3)
    assert (r.method, r.exact, r.crop) == ("matlab-uint8", True, "none")


@pytest.mark.parametrize("fmt", ["lmdb", "hdf5"])
def test_packed_dataset(photos, tmp_path, fmt):
    """--data reads srprep's packed layouts (HR.lmdb + X2.lmdb, data.h5 groups) as it reads folders."""
    for n, hr in photos.items():
        write_image(tmp_path / "src" / "HR" / f"{n}.png", hr)
        write_image(tmp_path / "src" / "X2" / f"{n}x2.png", _torch_aa(hr, 2))
    pack(tmp_path / "src", tmp_path / "packed", fmt=fmt, jobs=1, progress=False)
    rep = identify(data=tmp_path / "packed", scale=2, progress=False)
    assert (rep.verdict.method, rep.verdict.exact, len(rep.images)) == ("torch-bicubic-antialias", True, 4)
    assert rep.sheet(1).ndim == 3


# ----------------------------------------------------------------------------------------- the parts
def test_pair_keys_longest_prefix_and_suffixes():
    pairs, lonely_lr, lonely_hr = pair_keys(["img_001", "img_0011", "baby", "zebra"],
                                            ["img_001_SRF_4_LR", "img_0011_SRF_4_LR", "babyx2", "extra"])
    assert pairs == [("img_001", "img_001_SRF_4_LR"), ("img_0011", "img_0011_SRF_4_LR"), ("baby", "babyx2")]
    assert lonely_lr == ["extra"] and lonely_hr == ["zebra"]
    with pytest.raises(StoreError, match="two LR images pair with the HR 'baby'"):
        pair_keys(["baby"], ["babyx2", "baby_LRBI_x2"])


def test_crop_candidates_from_sizes():
    labels = lambda hr, lr, s: [c.labels for c in crop_candidates(hr, lr, s)]  # noqa: E731
    assert labels((512, 512), (170, 170), 3) == [("modcrop-s",), ("none",)]  # floor: cut, or squeezed whole
    assert labels((512, 512), (252, 252), 2) == [("modcrop-12",)]  # 504 = 512 cut to a multiple of 12
    assert labels((228, 336), (114, 168), 2) == [("modcrop-s", "modcrop-12", "none")]  # all the same pixels
    assert labels((101, 147), (34, 49), 3) == [("none",)]  # ceil: MATLAB's imresize(HR, 1/3) uncropped
    assert crop_candidates((512, 512), (100, 100), 2) == []
    c = crop_candidates((101, 147), (34, 49), 3)[0]
    assert (c.scale, c.banded) == (1 / 3, False)


def test_early_exit_keeps_the_verdict_and_reports_sample_matches(photos):
    hr = photos["kodim01"]
    lr = _cv2_area(hr, 2)
    fast = identify_pair(hr, lr, 2)
    full = identify_pair(hr, lr, 2, IdentifyOptions(sample_rows=0))
    assert (fast.method, fast.exact) == (full.method, full.exact) == ("cv2-area", True)
    assert not full.stopped and "matlab-uint8" in fast.stopped and "cv2-area" not in fast.stopped
    for n in RESIZERS:
        if n in fast.stopped:  # its match on the band, far below the best
            assert fast.candidates[n] < 0.98
        else:
            assert fast.candidates[n] == full.candidates[n]


def test_band_values_equal_the_whole_images(photos):
    """The early-exit band is cut with a margin so that every resizer gives the rows it keeps exactly as it
    gives them on the whole image (the premise of the early exit)."""
    hr = photos["woman"]
    for s in (2, 3, 4):
        h, w = hr.shape[0] // s, hr.shape[1] // s
        a, b = 10, 40  # LR rows made from the band; rows a+4 .. b-4 are kept
        for n in RESIZERS:
            whole = resize_with(n, hr, (h, w), 1 / s)
            band = resize_with(n, hr[a * s:b * s], (b - a, w), 1 / s)
            assert np.array_equal(band[4:-4], whole[a + 4:b - 4]), (n, s)


def test_basicsr_port_is_matlabs_algorithm_in_float32(ref_data):
    hr = modcrop(read_image(ref_data / "benchmark" / "Set5" / "HR" / "butterfly.png"), 12)
    for s in (2, 3, 4):
        port = imresize_basicsr(hr / 255.0, 1 / s)
        assert port.dtype == np.float32
        np.testing.assert_allclose(port, imresize_matlab(hr, 1 / s, im2double=True), atol=3e-6)
    assert resize_with("basicsr", hr, (10, 10), None) is None  # it only takes a scale


def test_pillow_simd_candidate_needs_pillow_simd(photos, monkeypatch):
    import srprep.ops.resizers as resizers

    assert resizers.pil_is_pillow_simd()  # srprep's environment
    monkeypatch.setattr(resizers, "pil_is_pillow_simd", lambda: False)
    assert resize_with("pillow-simd-bicubic", photos["bird"], (144, 144), 0.5) is None


def test_verdict_rules():
    def res(key, cands, values=100):
        best = max(cands, key=cands.get)
        return ImageResult(key, best, cands[best] == 1.0, cands[best], 0, "modcrop-s", ("modcrop-s",), cands,
                           values=values)
    a = {"matlab-uint8": 1.0, "cv2-area": 0.5}
    b = {"matlab-uint8": 0.9, "cv2-area": 1.0}
    c = {"matlab-uint8": 0.95, "cv2-area": 0.6}
    assert overall_verdict([res("1", a), res("2", a)]).describe() == "matlab-uint8, exact"
    v = overall_verdict([res("1", a), res("2", b), res("3", c)])
    assert (v.method, v.exact, v.counts) == ("mixed", False, {"matlab-uint8": 1, "cv2-area": 1,
                                                             "no exact match": 1})
    v = overall_verdict([res("1", a), res("2", c, 300)])  # one resizer is exact on some images only
    assert (v.method, v.exact, v.match) == ("matlab-uint8", False, pytest.approx((100 + 285) / 400))
    assert v.describe() == "closest: matlab-uint8, 96.2 % (not exact)"


def test_difference_map_marks_one_level():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 1, 2] = 1
    b[1, 1, 0] = 200
    assert difference_map(a, b).tolist() == [[0, 128], [0, 255]]


def test_errors_name_the_files(photos, tmp_path):
    hr_dir, lr_dir = _write_set(tmp_path / "a", photos, 2, _cv2_area)
    with pytest.raises(StoreError, match=r"LR/birdx2.png is 144x144 but .*HR/bird.png is 288x288: no crop of it "
                                         r"makes an x3 LR of that size \(expected 96x96\) \(and 3 more pairs\)"):
        identify(hr=hr_dir, lr=lr_dir, scale=3, progress=False, jobs=1)
    write_image(tmp_path / "b" / "other.png", photos["bird"])
    with pytest.raises(StoreError, match="no LR image of .* pairs with an HR image"):
        identify(hr=hr_dir, lr=tmp_path / "b", scale=2, progress=False)
    (tmp_path / "a" / "LR").rename(tmp_path / "a" / "X2")  # srprep's layout: HR + X2
    assert identify(data=tmp_path / "a", scale=2, progress=False).verdict.method == "cv2-area"
    with pytest.raises(StoreError, match=r"no LR for x4 \(looked for LR_bicubic/X4, X4, x4, LRbicx4"):
        identify(data=tmp_path / "a", scale=4, progress=False)


# ------------------------------------------------------------------------------------- command line
def test_command_line_json_and_sheet(shared_data, tmp_path, capsys):
    rc = main(["identify", "--hr", str(shared_data / "benchmark" / "Set5" / "HR"), "--lr",
               str(shared_data / "rcan_LRBI" / "Set5" / "x2"), "--scale", "2", "--json", str(tmp_path / "v.json"),
               "--sheet", str(tmp_path / "worst.png"), "--sheet-count", "2", "-j", "2"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "closest: matlab-uint8, 99.4 % (not exact); HR crop modcrop-s" in out
    doc = json.loads((tmp_path / "v.json").read_text())
    assert set(doc) == {"overall", "images"}
    assert set(doc["overall"]) == {"method", "exact", "match", "crop"}
    assert doc["overall"]["method"] == "matlab-uint8" and doc["overall"]["exact"] is False
    img = doc["images"][0]
    assert set(img) == {"key", "method", "exact", "match", "max_diff", "candidates"}
    assert img["key"] == "baby" and set(img["candidates"]) == set(RESIZERS)
    sheet = read_image(tmp_path / "worst.png")
    assert sheet.shape[0] > 2 * 256 and sheet.shape[1] > 4 * 256  # two rows of four HR-sized cells
    set5 = str(shared_data / "benchmark" / "Set5")
    assert main(["identify", "--data", set5, "--hr", set5 + "/HR", "-s", "2"]) != 0
    assert main(["identify", "--data", str(shared_data / "benchmark" / "Set5"), "-s", "2", "--resizers",
                 "cv2-area,nope"]) != 0
    assert main(["-q", "identify", "--data", str(shared_data / "benchmark" / "Set5"), "-s", "4", "--resizers",
                 "cv2-area,matlab-uint8"]) == 0
    assert "matlab-uint8, exact" in capsys.readouterr().out
