"""B100 (all 100 images, EDSR benchmark layout, MATLAB LR in the uint8 convention): srprep downsample is exact at
x2/x3/x4, a grey HR gives MATLAB's grey LR, and every dataset layout srprep reads is recognised on it."""
import os

import cv2
import numpy as np
import pytest

from srprep.io.images import read_image, write_image
from srprep.io.stores import open_store
from srprep.stages.downsample import downsample
from srprep.stages.eval import find_pairs, iter_pairs

SCALES = (2, 3, 4)


@pytest.fixture(scope="module")
def b100(shared_data):
    return shared_data / "benchmark" / "B100"


@pytest.fixture(scope="module")
def made(b100, tmp_path_factory):
    """B100 through srprep downsample (uint8 convention, the default), all three scales."""
    dst = tmp_path_factory.mktemp("b100") / "B100"
    reports = downsample(b100 / "HR", dst, list(SCALES), progress=False)
    assert [r.processed for r in reports] == [100] * 4
    return dst


@pytest.mark.slow
@pytest.mark.parametrize("scale", SCALES)
def test_downsample_is_exact_on_every_b100_image(b100, made, scale):
    names = sorted(p.stem for p in (b100 / "HR").glob("*.png"))
    assert len(names) == 100
    differing = {}
    for name in names:
        ours = read_image(made / f"X{scale}" / f"{name}x{scale}.png")
        ref = read_image(b100 / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
        assert ours.shape == ref.shape, name
        if not np.array_equal(ours, ref):
            differing[name] = int(np.count_nonzero(ours != ref))
    assert differing == {}


def test_grey_hr_gives_matlabs_grey_lr(b100, tmp_path):
    """MATLAB's imresize works on each channel alone, so the green plane of the real LR is MATLAB's LR of the
    green plane of the HR. A 1-channel HR file gives a 1-channel LR file with exactly those values."""
    names = ["101085", "12084", "3096", "86000"]
    for name in names:
        write_image(tmp_path / "grey" / f"{name}.png", read_image(b100 / "HR" / f"{name}.png")[..., 1])
    downsample(tmp_path / "grey", tmp_path / "out", list(SCALES), jobs=1, progress=False)
    for name in names:
        hr = cv2.imread(str(tmp_path / "out" / "HR" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert hr.ndim == 2
        for s in SCALES:
            lr = cv2.imread(str(tmp_path / "out" / f"X{s}" / f"{name}x{s}.png"), cv2.IMREAD_UNCHANGED)
            ref = read_image(b100 / "LR_bicubic" / f"X{s}" / f"{name}x{s}.png")[..., 1]
            assert lr.ndim == 2 and lr.dtype == np.uint8
            np.testing.assert_array_equal(lr, ref)


def _link_folder(dst, files):
    dst.mkdir(parents=True)
    for name, target in files:
        os.symlink(target, dst / name)


@pytest.mark.slow
def test_every_layout_is_recognised_on_b100(b100, made, tmp_path):
    """The EDSR benchmark layout itself, BasicSR's (GTmod12/ + LRbicx{s}/<name>.png, here links to the same
    files), srprep downsample's (HR/ + X{s}/), and HR only (LR made by MATLAB bicubic): each is recognised,
    pairs all 100 images by name, and gives the very pairs of the benchmark files."""
    names = sorted(p.stem for p in (b100 / "HR").glob("*.png"))
    basicsr = tmp_path / "B100_basicsr"
    _link_folder(basicsr / "GTmod12", [(f"{n}.png", b100 / "HR" / f"{n}.png") for n in names])
    for s in SCALES:
        _link_folder(basicsr / f"LRbicx{s}", [(f"{n}.png", b100 / "LR_bicubic" / f"X{s}" / f"{n}x{s}.png")
                                              for n in names])
    only_hr = tmp_path / "B100_hr"
    _link_folder(only_hr, [(f"{n}.png", b100 / "HR" / f"{n}.png") for n in names])

    for s in SCALES:
        expected = {
            b100: (b100 / "HR", b100 / "LR_bicubic" / f"X{s}"),
            basicsr: (basicsr / "GTmod12", basicsr / f"LRbicx{s}"),
            made: (made / "HR", made / f"X{s}"),
            only_hr: (only_hr, None),
        }
        reference = None
        for data, (hr_dir, lr_dir) in expected.items():
            source = find_pairs(data, s)
            assert (source.hr_dir, source.lr_dir) == (hr_dir, lr_dir), data
            pairs = {name: (lr, hr) for name, lr, hr in iter_pairs(source)}
            assert sorted(pairs) == names
            if reference is None:
                reference = pairs
                continue
            for name in names:
                np.testing.assert_array_equal(pairs[name][0], reference[name][0], err_msg=f"{data.name} {name}")
                np.testing.assert_array_equal(pairs[name][1], reference[name][1], err_msg=f"{data.name} {name}")
        # Folder stores name LR files by key with the scale suffix stripped (benchmark) or as they are (BasicSR).
        assert open_store(b100 / "LR_bicubic" / f"X{s}", scale=s).keys() == names
        assert open_store(basicsr / f"LRbicx{s}", scale=s).keys() == names
