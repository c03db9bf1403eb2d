"""srprep downsample: bit-exact against real MATLAB LR in both conventions, cached per scale."""
import re

import numpy as np
import pytest

from srprep.cli import main
from srprep.io.images import read_image, write_image
from srprep.stages.downsample import DownsampleOptions, downsample

NAMES = ["baby", "bird", "butterfly", "head", "woman"]


def test_uint8_convention_matches_the_benchmark_lr(ref_data, tmp_path, capsys):
    dst = tmp_path / "Set5"
    assert main(["-q", "downsample", ref_data / "benchmark/Set5/HR", dst, "-s", "2", "-s", "3", "-s", "4"]) == 0
    for s in (2, 3, 4):
        for name in NAMES:
            ours = read_image(dst / f"X{s}/{name}x{s}.png")
            ref = read_image(ref_data / f"benchmark/Set5/LR_bicubic/X{s}/{name}x{s}.png")
            assert ours.shape == ref.shape
            assert np.array_equal(ours, ref), f"{name} x{s}: {np.count_nonzero(ours != ref)} values differ"
    for name in NAMES:  # HR is written as is (uncropped), the benchmark layout
        assert np.array_equal(read_image(dst / f"HR/{name}.png"),
                              read_image(ref_data / f"benchmark/Set5/HR/{name}.png"))


def test_im2double_convention_matches_basicsr_lrbic(ref_data, tmp_path):
    # x2: every value. x4: all but two values (baby and woman, one level each), which lie 6e-7 and 2e-6
    # levels from k + 0.5 -- no float64 computation rounds them as the file has them; see
    # tests/ops/test_imresize.py, which pins them.
    known = {("baby", 4): 1, ("woman", 4): 1}
    dst = tmp_path / "Set5"
    # --layout basicsr: BasicSR's folder and file names, im2double, HR cropped to a multiple of 12
    assert main(["-q", "downsample", ref_data / "benchmark/Set5/HR", dst, "-s", "2", "-s", "4",
                 "--layout", "basicsr"]) == 0
    assert sorted(p.name for p in dst.iterdir()) == sorted(
        p.name for p in (ref_data / "basicsr_im2double/Set5").iterdir())
    for name in NAMES:
        assert np.array_equal(read_image(dst / f"GTmod12/{name}.png"),
                              read_image(ref_data / f"basicsr_im2double/Set5/GTmod12/{name}.png"))
        for s in (2, 4):
            ours = read_image(dst / f"LRbicx{s}/{name}.png")
            ref = read_image(ref_data / f"basicsr_im2double/Set5/LRbicx{s}/{name}.png")
            diff = np.abs(ours.astype(int) - ref)
            assert np.count_nonzero(diff) == known.get((name, s), 0) and diff.max() <= 1, f"{name} x{s}"


def test_each_scale_is_cached_on_its_own(ref_data, tmp_path, capsys):
    src, dst = ref_data / "benchmark/Set5/HR", tmp_path / "d"
    assert main(["downsample", src, dst, "-s", "2", "-j", "1"]) == 0
    capsys.readouterr()
    assert main(["downsample", src, dst, "-s", "2", "-s", "4", "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"downsample:HR: up to date", out)
    assert re.search(r"downsample:X2: up to date", out)
    assert re.search(r"downsample:X4: 5 items, 5 processed", out)
    assert main(["downsample", src, dst, "-s", "2", "--im2double", "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "downsample:HR: up to date" in out and "downsample:X2: 5 items, 5 processed" in out


def test_npy_keeps_the_im2double_result_unrounded(samples, tmp_path):
    src = tmp_path / "src"
    write_image(src / "k.png", read_image(samples / "kodak/kodim03.png")[:101, :97])
    [_, rep] = downsample(src, tmp_path / "png", [2], opts=DownsampleOptions(im2double=True), progress=False)
    downsample(src, tmp_path / "npy", [2], opts=DownsampleOptions(im2double=True, fmt="npy"), progress=False)
    f = np.load(tmp_path / "npy/X2/kx2.npy")
    u8 = read_image(tmp_path / "png/X2/kx2.png")
    assert f.dtype == np.float32 and f.shape == u8.shape == (50, 48, 3)
    assert np.abs(np.clip(f * 255, 0, 255) - u8).max() <= 0.5 + 1e-3  # unclipped: ringing may leave [0, 1]
    assert np.any(np.abs(f * 255 - np.round(f * 255)) > 1e-3), "npy must not be rounded"


def test_jobs_give_the_same_bytes(samples, tmp_path):
    src = samples / "kodak"
    downsample(src, tmp_path / "a", [3], jobs=1, progress=False)
    downsample(src, tmp_path / "b", [3], jobs=2, write_hr=False, progress=False)
    for p in sorted((tmp_path / "a/X3").glob("*.png")):
        a = p.read_bytes()
        assert a == (tmp_path / "b/X3" / p.name).read_bytes()


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_cuda_path_equals_numpy(samples):
    from srprep.stages.downsample import downsample_image
    img = read_image(samples / "kodak/kodim05.png")[:120, :133]
    for im2double in (False, True):
        for s in (2, 3, 4):
            o = DownsampleOptions(im2double=im2double)
            assert np.array_equal(downsample_image(img, s, o), downsample_image(img, s, o, device="cuda"))


def _mixed_sizes(samples, tmp_path):
    """Sizes in runs, so that batches of equal size form and also break: 3 x A, 2 x B, 1 x A, 1 grey C."""
    src = tmp_path / "mixed"
    img = read_image(samples / "kodak/kodim05.png")
    shapes = [(96, 128)] * 3 + [(101, 77)] * 2 + [(96, 128), (64, 50)]
    for i, (h, w) in enumerate(shapes):
        part = img[i * 7: i * 7 + h, i * 11: i * 11 + w]
        write_image(src / f"im{i}.png", part[..., 0] if i == 6 else part)
    return src


@pytest.mark.parametrize("im2double,fmt", [(False, "png"), (True, "png"), (True, "npy")])
def test_batched_device_path_equals_cpu_path(samples, tmp_path, monkeypatch, im2double, fmt):
    """The pipelined device path (decode ahead, equal-size batches through the torch resize, writer threads),
    run here on the CPU as torch device: byte-identical files to the numpy path, mixed sizes batched as far as
    they go (not refused), every item recorded, a second run up to date."""
    import srprep.stages.downsample as ds

    sizes = []  # the batches the pipeline forms
    resize_batch = ds._resize_batch
    monkeypatch.setattr(ds, "_resize_batch", lambda hrs, **kw: sizes.append(len(hrs)) or resize_batch(hrs, **kw))
    src = _mixed_sizes(samples, tmp_path)
    opts = DownsampleOptions(im2double=im2double, fmt=fmt)
    downsample(src, tmp_path / "cpu", [2, 3], opts=opts, write_hr=False, jobs=1, progress=False)
    assert sizes == []
    dev = dict(opts=opts, write_hr=False, pipelined=True, batch=3, progress=False)
    reports = downsample(src, tmp_path / "dev", [2, 3], **dev)
    assert [(r.processed, r.status) for r in reports] == [(7, "done")] * 2
    assert sizes == [3, 2, 1, 1] * 2  # A A A | B B | A | C (grey, read as RGB), per scale
    for s in (2, 3):
        cpu, out = tmp_path / "cpu" / f"X{s}", tmp_path / "dev" / f"X{s}"
        files = sorted(p.name for p in cpu.iterdir() if not p.name.startswith("."))
        assert files == sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
        for name in files:
            if fmt == "npy":
                assert np.array_equal(np.load(cpu / name), np.load(out / name)), name
            else:
                assert (cpu / name).read_bytes() == (out / name).read_bytes(), name
    assert [r.status for r in downsample(src, tmp_path / "dev", [2, 3], **dev)] == ["up to date"] * 2


def test_batched_device_path_names_a_bad_image(samples, tmp_path):
    from srprep.errors import StageError

    src = _mixed_sizes(samples, tmp_path)
    (src / "im4.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(StageError, match="im4"):
        downsample(src, tmp_path / "dev", [2], write_hr=False, pipelined=True, batch=3, progress=False)
    assert (tmp_path / "dev" / "X2" / "im0x2.png").exists()  # finished work is kept


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_cuda_cli_batches_equal_cpu(samples, tmp_path):
    src = _mixed_sizes(samples, tmp_path)
    for extra in ([], ["--im2double"]):
        a, b = tmp_path / f"cpu{len(extra)}", tmp_path / f"gpu{len(extra)}"
        assert main(["-q", "downsample", src, a, "-s", "2", "-s", "4", *extra]) == 0
        assert main(["-q", "downsample", src, b, "-s", "2", "-s", "4", "--device", "cuda", "--batch", "3", *extra]) == 0
        for p in sorted(a.glob("X*/*.png")):
            assert p.read_bytes() == (b / p.relative_to(a)).read_bytes(), p


def test_errors(samples, tmp_path, capsys):
    src = tmp_path / "src"
    write_image(src / "tiny.png", np.zeros((3, 40, 3), np.uint8))
    assert main(["downsample", src, tmp_path / "d", "-s", "4"]) == 1
    assert "tiny.png" in capsys.readouterr().err
    assert main(["downsample", samples / "set5", tmp_path / "d", "-s", "0"]) == 1
    assert "scale must be positive" in capsys.readouterr().err
    assert main(["downsample", samples / "set5", tmp_path / "d", "-s", "1.5"]) == 1
    assert "--no-modcrop" in capsys.readouterr().err


def test_non_integer_scale_without_modcrop(samples, tmp_path):
    src = tmp_path / "src"
    write_image(src / "k.png", read_image(samples / "kodak/kodim01.png")[:100, :91])
    [_, rep] = downsample(src, tmp_path / "d", [1.5], opts=DownsampleOptions(modcrop=False), progress=False)
    lr = read_image(tmp_path / "d/X1.5/kx1.5.png")
    assert lr.shape == (67, 61, 3)  # ceil(100/1.5), ceil(91/1.5)


def _count_decodes(monkeypatch):
    """Count the images decoded in this process (jobs=1 runs the workers here)."""
    import srprep.stages.downsample as ds

    seen = []
    real = ds.images.read_image
    monkeypatch.setattr(ds.images, "read_image", lambda path, **kw: seen.append(str(path)) or real(path, **kw))
    return seen


def test_one_decode_per_image_for_every_scale_and_only_the_new_scale_later(samples, tmp_path, monkeypatch):
    src, dst = samples / "set5", tmp_path / "d"
    seen = _count_decodes(monkeypatch)
    reports = downsample(src, dst, [2, 3, 4], jobs=1, progress=False)
    assert [r.processed for r in reports] == [5, 5, 5, 5]
    assert sorted(seen) == sorted(str(p) for p in src.glob("*.png"))  # once each, for HR + X2 + X3 + X4
    seen.clear()
    reports = downsample(src, dst, [2, 3, 4, 8], jobs=1, progress=False)
    assert [r.status for r in reports] == ["up to date"] * 4 + ["done"] and len(seen) == 5
    seen.clear()
    reports = downsample(src, dst, [2, 3, 4, 8], opts=DownsampleOptions(im2double=True), jobs=1, progress=False)
    assert [r.status for r in reports] == ["up to date"] + ["done"] * 4 and len(seen) == 5
    for s in (2, 3, 4, 8):  # the fused path gives each scale exactly what resizing that scale alone gives
        for key in ("baby", "woman"):
            ref = __import__("srprep.stages.downsample", fromlist=["x"]).downsample_image(
                read_image(src / f"{key}.png"), s, DownsampleOptions(im2double=True))
            assert np.array_equal(read_image(dst / f"X{s}/{key}x{s}.png"), ref)


def test_hr_is_the_source_file_linked_when_its_pixels_are_the_hrs(samples, tmp_path, monkeypatch):
    import os

    src = tmp_path / "src"
    src.mkdir()
    for name in ("baby", "woman"):  # 8-bit RGB PNGs: 512x512 and 344x228
        os.link(samples / "set5" / f"{name}.png", src / f"{name}.png")
    write_image(src / "photo.jpg", read_image(samples / "kodak/kodim02.png"))  # JPEG: encoded as PNG
    write_image(src / "grey.png", read_image(samples / "kodak/kodim03.png")[:64, :48, 1])  # grey PNG: encoded
    seen = _count_decodes(monkeypatch)
    downsample(src, tmp_path / "d", [2], jobs=1, progress=False)
    hr = tmp_path / "d/HR"
    assert os.path.samefile(hr / "baby.png", src / "baby.png") and os.path.samefile(hr / "woman.png", src / "woman.png")
    for key, ext in (("photo", "jpg"), ("grey", "png")):
        assert not os.path.samefile(hr / f"{key}.png", src / f"{key}.{ext}")
        assert np.array_equal(read_image(hr / f"{key}.png"), read_image(src / f"{key}.{ext}"))
    assert len(seen) == 4  # once per image, for X2 (the linked HR needs no decode of its own)
    # --mod that crops nothing (512 and 344x228 are multiples of 4) still links; one that crops encodes once
    downsample(src, tmp_path / "m4", [2], opts=DownsampleOptions(mod=4), jobs=1, progress=False)
    assert os.path.samefile(tmp_path / "m4/HR/woman.png", src / "woman.png")
    downsample(src, tmp_path / "m12", [2], opts=DownsampleOptions(mod=12), jobs=1, progress=False)
    for key in ("baby", "woman"):
        out = tmp_path / "m12/HR" / f"{key}.png"
        assert not os.path.samefile(out, src / f"{key}.png")
        img = read_image(src / f"{key}.png")
        assert np.array_equal(read_image(out), img[: img.shape[0] // 12 * 12, : img.shape[1] // 12 * 12])


def test_hr_is_copied_where_no_link_can_be_made(samples, tmp_path, monkeypatch):
    import errno
    import os

    def no_link(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    downsample(samples / "set5", tmp_path / "d", [4], jobs=1, progress=False)
    for p in sorted((samples / "set5").glob("*.png")):
        out = tmp_path / "d/HR" / p.name
        assert out.read_bytes() == p.read_bytes() and not os.path.samefile(out, p)


def test_a_bad_image_fails_every_step_that_needs_it_and_the_rest_resumes(samples, tmp_path):
    from srprep.errors import StageError

    src = tmp_path / "src"
    for p in sorted((samples / "set5").glob("*.png")):
        write_image(src / p.name, read_image(p))
    good = (src / "head.png").read_bytes()
    (src / "head.png").write_bytes(good[:200])
    with pytest.raises(StageError, match=r"downsample:HR: item 'head' failed: .*head.png: truncated"):
        downsample(src, tmp_path / "d", [2, 4], jobs=1, progress=False)
    (src / "head.png").write_bytes(good)
    reports = downsample(src, tmp_path / "d", [2, 4], jobs=1, progress=False)
    assert [(r.status, r.processed) for r in reports] == [("done", 2)] * 3  # head and the one after it


def test_device_pipeline_computes_nothing_before_the_runner_asks(samples, tmp_path):
    # The runner makes the output folder (and holds the step's lock) only when it starts; a pipeline that began
    # computing and writing when it was built raced it ("cannot write: No such file or directory").
    import functools
    import time

    from srprep.stages.devicepipe import DevicePipeline
    from srprep.stages.downsample import ResizeCompute, _read_for_scale, _write_lr

    opts = DownsampleOptions()
    out = tmp_path / "X2"
    order = [(p.stem, (p.stem, str(p))) for p in sorted((samples / "set5").glob("*.png"))]  # (key, payload)
    with DevicePipeline(order, compute=ResizeCompute(2, opts), devices=["cpu"],
                        read=functools.partial(_read_for_scale, scale=2, opts=opts),
                        finish=functools.partial(_write_lr, scale=2, opts=opts, out=str(out)), batch=2) as pipe:
        time.sleep(1)
        assert not out.exists()
        out.mkdir()
        for _, payload in order:
            pipe(payload)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{k}x2.png" for k, _ in order)
