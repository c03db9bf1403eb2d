"""srprep upscale: same pixels as srprep.infer.upscale, cached on the model's content, clear errors."""
import shutil

import numpy as np
import pytest
import torch

from srprep.cli import main
from srprep.errors import SrprepError
from srprep.infer import upscale
from srprep.io.images import read_image, write_image
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
        np.testing.assert_array_equal(read_image(out / f"{name}.png"), one_thread_upscale(imdn, lr, output="uint8"))
    # Tiled, through the pipelined engine (what --device cuda uses), batched: still infer.upscale's pixels.
    report = upscale_store(lr_dir, tmp_path / "tiled", weights, opts=InferOptions(tile=24, overlap=8),
                           pipelined=True, batch=2, progress=False)
    assert report.processed == 3
    lr = read_image(lr_dir / "baby" "x2.png")
    np.testing.assert_array_equal(read_image(tmp_path / "tiled/baby.png"),
                                  one_thread_upscale(imdn, lr, tile=24, overlap=8, output="uint8"))


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


def one_thread_upscale(model, lr, **kw):
    """infer.upscale with the one torch thread every network step runs its items with."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return upscale(model, lr, scale=2, **kw)
    finally:
        torch.set_num_threads(threads)


def test_worker_processes_give_infer_pixels(lr_dir, weights, imdn, tmp_path):
    report = upscale_store(lr_dir, tmp_path / "two", weights, jobs=2, progress=False)
    assert report.processed == 3
    for name in ("baby", "bird", "head"):
        lr = read_image(lr_dir / f"{name}x2.png")
        np.testing.assert_array_equal(read_image(tmp_path / "two" / f"{name}.png"),
                                      one_thread_upscale(imdn, lr, output="uint8"))


def test_the_bytes_do_not_depend_on_jobs_threads_or_where_a_run_resumed(samples, weights, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    # A crop where 1 and 2 torch threads round 4 IMDN pixels differently (PyTorch takes another path for
    # 1x1 convolutions when it has one thread), and a second image so that -j 2 runs two worker processes.
    src = tmp_path / "lr"
    kodim = read_image(samples / "kodak/kodim01.png")
    write_image(src / "a.png", kodim[:200, :300])
    write_image(src / "b.png", kodim[200:260, :80])
    repo = Path(__file__).resolve().parents[2]
    outs = {}
    for jobs in ("1", "2"):  # -j 1: this process with all its cores' threads; -j 2: two workers
        proc = subprocess.run([sys.executable, "-m", "srprep", "upscale", str(src), str(tmp_path / jobs), "-m",
                               str(weights), "-j", jobs], capture_output=True, text=True, cwd=repo, timeout=900)
        assert proc.returncode == 0, proc.stderr
        outs[jobs] = {n: (tmp_path / jobs / n).read_bytes() for n in ("a.png", "b.png")}
    assert outs["1"] == outs["2"]


def test_non_finite_weights_or_outputs_are_refused_and_nothing_is_written(lr_dir, weights, tmp_path, capsys):
    state = torch.load(weights, map_location="cpu", weights_only=True)
    key = next(k for k, v in state.items() if torch.is_floating_point(v) and v.ndim == 4)
    state[key] = state[key].clone()
    state[key][0, 0, 0, 0] = float("nan")
    bad = tmp_path / "nan.pth"
    torch.save(state, bad)
    assert main(["upscale", lr_dir, tmp_path / "out", "-m", bad, "-j", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    name = key.removeprefix("module.")
    assert err.startswith(f"error: {bad}: the checkpoint holds non-finite weights ({name}: 1 NaN or inf"), err
    assert not list((tmp_path / "out").glob("*.png"))

    class Diverges(torch.nn.Module):
        scale = 2

        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=2) / 0.0

    with pytest.raises(SrprepError, match=r"the network output has \d+ non-finite values \(NaN or inf\)"):
        upscale(Diverges(), read_image(lr_dir / "birdx2.png"), scale=2, output="uint8")


def test_a_whole_image_too_big_for_free_memory_is_tiled_automatically(samples, weights, imdn, tmp_path,
                                                                      monkeypatch, caplog):
    import srprep.stages.network as network

    spec, model, _ = network.ModelSpec.load(weights)
    per_pixel = network.bytes_per_pixel(model, 2, "cpu")
    assert 1000 < per_pixel < 20000  # bytes per LR pixel of IMDN x2 (a whole 2040x1356 DIV2K LR: ~2-9 GiB)
    assert network.choose_tile(per_pixel, 1356, 2040, 1, 64 << 30, 32) is None
    assert network.choose_tile(per_pixel, 1356, 2040, 1, 1 << 30, 32) in (384, 512, 768)
    lr = read_image(samples / "kodak/kodim03.png")[:160, :160]
    write_image(tmp_path / "lr/x.png", lr)
    # a worker that may use the memory of a 100x100 LR image gets this 160x160 one tiled (tile 64 + overlap 32)
    monkeypatch.setattr(network, "available_memory", lambda device: per_pixel * 100 * 100 / 0.6)
    with caplog.at_level("WARNING"):
        upscale_store(tmp_path / "lr", tmp_path / "auto", weights, jobs=1, progress=False)
    assert "a 160x160 image needs about" in caplog.text and "it is tiled (tile 64, overlap 32)" in caplog.text
    np.testing.assert_array_equal(read_image(tmp_path / "auto/x.png"),
                                  one_thread_upscale(imdn, lr, tile=64, overlap=32, output="uint8"))


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
    assert main(["upscale", lr_dir, tmp_path / "sr", "-m", weights, "--chop", "--crop-ensemble", "600:100"]) == 2
    assert main(["upscale", lr_dir, tmp_path / "sr", "-m", weights, "--chop", "--tile", "64"]) == 2
    with pytest.raises(SrprepError, match="CUDA is not available"):
        upscale_store(lr_dir, tmp_path / "sr", weights, device="cuda") if not torch.cuda.is_available() \
            else pytest.skip("a GPU is present")


def test_chop_is_edsrs_and_crop_ensemble_takes_aims_lists():
    from srprep.cli.common import infer_options_from
    from srprep.infer import EDSR_CHOP

    assert infer_options_from(None, 32, False, None, "fp32", chop=True).crop_ensemble == EDSR_CHOP == ((400, 10),)
    # --chop-size 600 300 --shave-size 100 100
    assert infer_options_from(None, 32, False, "600,300:100,100", "fp32").crop_ensemble == ((600, 100), (300, 100))
    assert infer_options_from(None, 32, False, "600,300:100", "fp32").crop_ensemble == ((600, 100), (300, 100))
    # outputs cached by the earlier crop ensemble (averaged tilings, the same numbers) are not reused
    params = infer_options_from(None, 32, False, "600:100", "fp32").params()
    assert params["crop_ensemble_method"] == "aim2020 rotated quadrant chop"
    assert "crop_ensemble_method" not in infer_options_from(16, 8, False, None, "fp32").params()
