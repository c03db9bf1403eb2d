"""srprep upscale: same pixels as srprep.infer.upscale, cached on the model's content, clear errors."""
import shutil

import numpy as np
import pytest
import torch

from srprep.cli import main
from srprep.errors import SrprepError
from srprep.infer import upscale
from srprep.io.images import read_image, write_image
from srprep.runner import default_jobs
from srprep.stages.upscale import InferOptions, upscale_store


@pytest.fixture(scope="module")
def lr_dir(ref_data, tmp_path_factory):
    """Three real LR crops (Set5 x2 LR), named as in the EDSR benchmark layout (<name>x2.png)."""
    root = tmp_path_factory.mktemp("lr")
    for name, (h, w) in (("baby", (40, 48)), ("bird", (36, 36)), ("head", (44, 30))):
        img = read_image(ref_data / f"benchmark/Set5/LR_bicubic/X2/{name}x2.png")
        write_image(root / f"{name}x2.png", img[20:20 + h, 16:16 + w])
    return root


def test_outputs_equal_infer_upscale(lr_dir, weights, imdn, tmp_path, capsys):
    out = tmp_path / "sr"
    assert main(["upscale", lr_dir, out, "--model", weights, "-j", "1"]) == 0
    assert "3 items, 3 processed" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.png")) == ["baby.png", "bird.png", "head.png"]
    for name in ("baby", "bird", "head"):
        lr = read_image(lr_dir / f"{name}x2.png")
        np.testing.assert_array_equal(read_image(out / f"{name}.png"), upscale(imdn, lr, scale=2, output="uint8"))
    # Tiled, through the pipelined engine (what --device cuda uses), batched: still infer.upscale's pixels.
    report = upscale_store(lr_dir, tmp_path / "tiled", weights, opts=InferOptions(tile=24, overlap=8),
                           pipelined=True, batch=2, progress=False)
    assert report.processed == 3
    lr = read_image(lr_dir / "baby" "x2.png")
    np.testing.assert_array_equal(read_image(tmp_path / "tiled/baby.png"),
                                  upscale(imdn, lr, scale=2, tile=24, overlap=8, output="uint8"))


def test_cached_on_model_content(lr_dir, weights, tmp_path, capsys):
    out = tmp_path / "sr"
    assert main(["upscale", lr_dir, out, "-m", weights, "-j", "1"]) == 0
    first = read_image(out / "bird.png")
    capsys.readouterr()
    copy = tmp_path / "same_weights.pth"
    shutil.copy(weights, copy)
    assert main(["upscale", lr_dir, out, "-m", copy]) == 0  # same bytes elsewhere: nothing to redo
    assert "up to date" in capsys.readouterr().out
    state = torch.load(weights, map_location="cpu", weights_only=True)
    key = next(k for k in state if k.endswith("weight"))
    state[key] = state[key] * 1.05
    other = tmp_path / "other.pth"
    torch.save(state, other)
    assert main(["upscale", lr_dir, out, "-m", other, "-j", "1", "--dry-run"]) == 0
    assert "would process 3 of 3" in capsys.readouterr().out
    assert main(["upscale", lr_dir, out, "-m", other, "-j", "1"]) == 0
    assert "3 items, 3 processed, 0 reused" in capsys.readouterr().out
    assert not np.array_equal(read_image(out / "bird.png"), first)
    assert main(["upscale", lr_dir, out, "-m", other, "--tile", "20", "--overlap", "4", "-j", "1"]) == 0
    assert "3 processed" in capsys.readouterr().out  # an option is a parameter too


def test_worker_processes_give_infer_pixels(lr_dir, weights, imdn, tmp_path):
    report = upscale_store(lr_dir, tmp_path / "two", weights, jobs=2, progress=False)
    assert report.processed == 3
    # joblib gives each of the 2 workers cores // 2 torch threads; the float summation order of a convolution
    # depends on the thread count (a rare pixel can round the other way), so compare under the same count.
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, default_jobs() // 2))
    try:
        for name in ("baby", "bird", "head"):
            lr = read_image(lr_dir / f"{name}x2.png")
            np.testing.assert_array_equal(read_image(tmp_path / "two" / f"{name}.png"),
                                          upscale(imdn, lr, scale=2, output="uint8"))
    finally:
        torch.set_num_threads(threads)


def test_scale_mismatch_is_refused(lr_dir, weights, tmp_path, capsys):
    assert main(["upscale", lr_dir, tmp_path / "sr", "-m", weights, "--scale", "4"]) == 1
    err = capsys.readouterr().err
    assert "IMDN_x2.pth" in err and "x2" in err and "x4" in err
    assert not (tmp_path / "sr").exists()


def test_checkpoint_that_does_not_load_names_missing_keys(lr_dir, weights, tmp_path, capsys):
    state = torch.load(weights, map_location="cpu", weights_only=True)
    dropped = sorted(k for k in state if "upsampler" in k)
    assert dropped
    for k in dropped:
        del state[k]
    broken = tmp_path / "broken.pth"
    torch.save(state, broken)
    assert main(["upscale", lr_dir, tmp_path / "sr", "-m", broken, "--arch", "imdn", "--scale", "2"]) == 1
    err = capsys.readouterr().err
    assert "broken.pth" in err and "2 missing keys" in err and "upsampler.0.weight" in err


def test_unreadable_input_names_the_file(lr_dir, weights, tmp_path, capsys):
    src = tmp_path / "lr"
    shutil.copytree(lr_dir, src)
    (src / "zzzx2.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    assert main(["upscale", src, tmp_path / "sr", "-m", weights, "-j", "1"]) == 1
    err = capsys.readouterr().err
    assert "zzzx2.png" in err and "'zzz'" in err
    # the images before it are kept for the next run
    assert len(list((tmp_path / "sr").glob("*.png"))) == 3


def test_bad_options_are_usage_errors(lr_dir, weights, tmp_path):
    assert main(["upscale", lr_dir, tmp_path / "sr", "-m", weights, "--crop-ensemble", "600,300"]) == 2
    assert main(["upscale", lr_dir, tmp_path / "sr", "-m", weights, "--tile", "16", "--overlap", "16"]) == 2
    with pytest.raises(SrprepError, match="CUDA is not available"):
        upscale_store(lr_dir, tmp_path / "sr", weights, device="cuda") if not torch.cuda.is_available() \
            else pytest.skip("a GPU is present")
