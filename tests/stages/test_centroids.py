"""srprep centroids with the real IMDN x2 weights on small real images: exact pixels in every store dtype and
convention, pipelined and multi-process runs give the same bytes, resume after a real SIGKILL, packed stores,
and clear errors."""
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from srprep.cli import main
from srprep.errors import StoreError
from srprep.infer import upscale
from srprep.io.hdf5_store import Hdf5Store
from srprep.io.images import read_image, write_image
from srprep.io.lmdb_store import LmdbStore
from srprep.ops.imresize import imresize_matlab, to_uint8
from srprep.stages.centroids import CentroidOptions, OptionsError, centroids, make_centroids
from srprep.stages.pack import dataset_fields, pack

REPO = Path(__file__).resolve().parents[2]
NAMES = ("baby", "bird", "butterfly", "head", "woman")


@pytest.fixture(scope="module")
def dataset(ref_data, tmp_path_factory):
    """Set5 HR crops of odd size (97x103: HR is not LR x 2) and their x2 LR, made by srprep downsample."""
    hr = tmp_path_factory.mktemp("hr")
    for name in NAMES:
        write_image(hr / f"{name}.png", read_image(ref_data / "benchmark/Set5/HR" / f"{name}.png")[60:157, 50:153])
    data = tmp_path_factory.mktemp("data")
    assert main(["-q", "downsample", hr, data, "--scale", "2", "-j", "1"]) == 0
    return data


def copy_of(dataset, tmp_path, fields=("HR", "X2")) -> Path:
    for f in fields:
        shutil.copytree(dataset / f, tmp_path / "data" / f)
    return tmp_path / "data"


def test_make_centroids_conventions_and_dtypes(rng):
    sr = rng.random((24, 20, 3), dtype=np.float32)
    s8, l8 = make_centroids(sr, 2)
    np.testing.assert_array_equal(s8, np.floor(sr.astype(np.float64) * 255 + 0.5).astype(np.uint8))
    np.testing.assert_array_equal(l8, imresize_matlab(s8, 0.5))
    _, ld = make_centroids(sr, 2, convention="im2double")
    np.testing.assert_array_equal(ld, to_uint8(imresize_matlab(s8, 0.5, im2double=True)))
    assert (ld != l8).any()  # the two conventions really differ
    for dtype in ("float16", "float32"):
        sf, lf = make_centroids(sr, 2, convention="im2double", dtype=dtype)
        assert sf.dtype == lf.dtype == np.dtype(dtype) and lf.shape == (12, 10, 3)
        np.testing.assert_array_equal(lf, np.clip(imresize_matlab(sf.astype(np.float64), 0.5), 0, 1).astype(dtype))
    with pytest.raises(OptionsError, match="im2double"):
        make_centroids(sr, 2, dtype="float16")
    with pytest.raises(ValueError, match="multiple of the scale"):
        make_centroids(sr[:23], 2)


def test_uint8_centroids_are_exact(dataset, weights, imdn, tmp_path, capsys):
    data = copy_of(dataset, tmp_path)
    assert main(["centroids", data, "--model", weights, "-j", "1", "--preview", "3"]) == 0
    out = capsys.readouterr().out
    assert "5 items, 5 processed" in out and "imdn x2" in out and "uint8 convention" in out
    assert sorted(p.name for p in (data / "sr_pretrained").glob("*.png")) == [f"{n}.png" for n in NAMES]
    assert sorted(p.name for p in (data / "lr_pretrained").glob("*.png")) == [f"{n}x2.png" for n in NAMES]
    for name in NAMES:
        lr = read_image(data / "X2" / f"{name}x2.png")
        sr = read_image(data / "sr_pretrained" / f"{name}.png")
        lrp = read_image(data / "lr_pretrained" / f"{name}x2.png")
        assert lr.shape == (48, 51, 3) and sr.shape == (96, 102, 3) and lrp.shape == lr.shape
        # the model's own output, rounded half away from zero (fp32, whole image)
        np.testing.assert_array_equal(sr, to_uint8(upscale(imdn, lr, scale=2)))
        np.testing.assert_array_equal(lrp, imresize_matlab(sr, 0.5))
    manifest = json.loads((data / "sr_pretrained/.srprep/manifest.json").read_text())
    params = manifest["params"]
    assert manifest["complete"] and manifest["step"] == "centroids"
    assert params["model"]["sha256"].startswith("740b3965") and params["model"]["arch"] == "imdn"
    assert (params["precision"], params["convention"], params["store_dtype"]) == ("fp32", "uint8", "uint8")
    sheet = read_image(data / "centroids_preview.png")
    assert sheet.shape[0] > 3 * 96 and sheet.shape[1] > 4 * 96
    # srprep pack / crop see two more fields of the paired dataset, on the HR grid.
    fields = {f.name: f.scale for f in dataset_fields(data)}
    assert fields == {"HR": 1, "X2": 2, "sr_pretrained": 1, "lr_pretrained": 2}
    # Second run: nothing to do.
    assert main(["centroids", data, "--model", weights]) == 0
    assert "up to date" in capsys.readouterr().out


def test_im2double_and_float_stores(dataset, weights, imdn, tmp_path):
    data = copy_of(dataset, tmp_path)
    rep = centroids(data, weights, options=CentroidOptions("im2double"), out=tmp_path / "d", jobs=1, progress=False)
    assert rep.options.convention == "im2double"
    lr = read_image(data / "X2" / "bird" "x2.png")
    sr_float = upscale(imdn, lr, scale=2)
    sr = read_image(tmp_path / "d/sr_pretrained/bird.png")
    np.testing.assert_array_equal(sr, to_uint8(sr_float))
    np.testing.assert_array_equal(read_image(tmp_path / "d/lr_pretrained/birdx2.png"),
                                  to_uint8(imresize_matlab(sr, 0.5, im2double=True)))
    for dtype in ("float32", "float16"):
        rep = centroids(data, weights, options=CentroidOptions(store_dtype=dtype), out=tmp_path / dtype, jobs=1,
                        progress=False)
        assert rep.options.convention == "im2double"  # the only one that applies to unrounded data
        s = np.load(tmp_path / dtype / "sr_pretrained/bird.npy")
        lp = np.load(tmp_path / dtype / "lr_pretrained/birdx2.npy")
        assert s.dtype == lp.dtype == np.dtype(dtype) and s.shape == (96, 102, 3) and lp.shape == (48, 51, 3)
        np.testing.assert_array_equal(s, sr_float.astype(dtype))
        np.testing.assert_array_equal(lp, np.clip(imresize_matlab(s.astype(np.float64), 0.5), 0, 1).astype(dtype))
    with pytest.raises(OptionsError, match="im2double"):
        centroids(data, weights, options=CentroidOptions("uint8", "float32"), out=tmp_path / "x")


def test_pipelined_and_two_processes(dataset, weights, tmp_path):
    data = copy_of(dataset, tmp_path)
    centroids(data, weights, out=tmp_path / "ref", jobs=1, progress=False)
    # What --device cuda does (decode / network / encode threads), on the CPU: the same bytes.
    a = centroids(data, weights, out=tmp_path / "a", pipelined=True, progress=False)
    # Batches of equal-size images, and one process per device (as with several GPUs): a batched convolution,
    # or another torch thread count, sums in another order, so a rare pixel may round one level the other way.
    b = centroids(data, weights, out=tmp_path / "b", pipelined=True, batch=2, progress=False)
    c = centroids(data, weights, out=tmp_path / "c", device="cpu,cpu", progress=False)
    assert a.step.processed == b.step.processed == c.step.processed == 5
    for rel in [f"sr_pretrained/{n}.png" for n in NAMES] + [f"lr_pretrained/{n}x2.png" for n in NAMES]:
        ref = (tmp_path / "ref" / rel).read_bytes()
        assert (tmp_path / "a" / rel).read_bytes() == ref, rel
        for other in ("b", "c"):
            diff = np.abs(read_image(tmp_path / other / rel).astype(int) - read_image(tmp_path / "ref" / rel))
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (other, rel)
    lr = read_image(data / "X2/birdx2.png")
    np.testing.assert_array_equal(read_image(tmp_path / "b/lr_pretrained/birdx2.png"),
                                  imresize_matlab(read_image(tmp_path / "b/sr_pretrained/bird.png"), 0.5))
    assert lr.shape == (48, 51, 3)


def test_changed_model_redoes_the_step(dataset, weights, tmp_path, capsys):
    data = copy_of(dataset, tmp_path)
    assert main(["-q", "centroids", data, "-m", weights, "-j", "1"]) == 0
    before = read_image(data / "sr_pretrained/head.png")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    key = next(k for k in state if k.endswith("LR_conv.weight"))
    state[key] = state[key] * 0.9
    torch.save(state, tmp_path / "other.pth")
    assert main(["centroids", data, "-m", tmp_path / "other.pth", "--dry-run"]) == 0
    assert "would process 5 of 5" in capsys.readouterr().out
    assert main(["centroids", data, "-m", tmp_path / "other.pth", "-j", "1"]) == 0
    assert "5 items, 5 processed, 0 reused" in capsys.readouterr().out
    assert not np.array_equal(read_image(data / "sr_pretrained/head.png"), before)


def test_killed_run_resumes_to_the_same_bytes(samples, weights, tmp_path, kill_when):
    hr = tmp_path / "hr"
    kodak = [read_image(p) for p in sorted((samples / "kodak").glob("*.png"))]
    for i in range(16):
        write_image(hr / f"img{i:02d}.png", kodak[i % 8][97 * (i // 8):97 * (i // 8) + 131, 60:189])
    data = tmp_path / "data"
    assert main(["-q", "downsample", hr, data, "-s", "2", "-j", "1"]) == 0
    centroids(data, weights, out=tmp_path / "ref", jobs=1, progress=False)
    sr_dir = data / "sr_pretrained"
    done_before = kill_when([sys.executable, "-m", "srprep", "-q", "centroids", data, "-m", weights, "-j", "1"],
                            sr_dir, "*.png", 3, step="centroids", cwd=REPO)
    assert done_before == 3
    assert not (sr_dir / ".srprep/manifest.json").exists()
    report = centroids(data, weights, jobs=1, progress=False)
    assert (report.step.processed, report.step.reused) == (13, 3)
    assert not [p for d in ("sr_pretrained", "lr_pretrained") for p in (data / d).iterdir()
                if p.name.startswith(".") and p.name != ".srprep"]
    for rel in [f"sr_pretrained/img{i:02d}.png" for i in range(16)] + \
               [f"lr_pretrained/img{i:02d}x2.png" for i in range(16)]:
        assert (data / rel).read_bytes() == (tmp_path / "ref" / rel).read_bytes(), rel


def test_packed_sources(dataset, weights, tmp_path):
    data = copy_of(dataset, tmp_path)
    centroids(data, weights, jobs=1, progress=False)
    for fmt in ("lmdb", "hdf5"):
        dst = tmp_path / fmt
        pack(data, dst, fmt=fmt, fields=[f for f in dataset_fields(data) if f.name in ("HR", "X2")], jobs=1,
             progress=False)
        rep = centroids(dst, weights, jobs=1, progress=False, preview=2)
        assert rep.kind == fmt and rep.step.processed == 5 and (dst / "centroids_preview.png").is_file()
        if fmt == "lmdb":
            sr_store, lr_store = LmdbStore(dst / "sr_pretrained.lmdb"), LmdbStore(dst / "lr_pretrained.lmdb")
        else:
            sr_store = Hdf5Store(dst / "centroids/data.h5", "sr_pretrained")
            lr_store = Hdf5Store(dst / "centroids/data.h5", "lr_pretrained")
        assert sorted(sr_store.keys()) == sorted(NAMES) == sorted(lr_store.keys())
        for name in NAMES:
            np.testing.assert_array_equal(sr_store.read(name), read_image(data / f"sr_pretrained/{name}.png"))
            np.testing.assert_array_equal(lr_store.read(name), read_image(data / f"lr_pretrained/{name}x2.png"))
        sr_store.close()
        lr_store.close()
        assert centroids(dst, weights, progress=False).step.status == "up to date"
    with pytest.raises(OptionsError, match="folder dataset"):
        centroids(tmp_path / "lmdb", weights, options=CentroidOptions(store_dtype="float32"))


def test_scale_mismatch_is_refused(dataset, weights, tmp_path, capsys):
    data = tmp_path / "x3"
    assert main(["-q", "downsample", dataset / "HR", data, "-s", "3", "-j", "1"]) == 0
    assert main(["centroids", data, "-m", weights]) == 1
    err = capsys.readouterr().err
    assert "the model is x2" in err and "x3" in err.lower() and "X2" in err
    # An X2 folder that holds x3-sized images
    (data / "X3").rename(data / "X2")
    for p in (data / "X2").glob("*x3.png"):
        p.rename(p.with_name(p.name.replace("x3.png", "x2.png")))
    with pytest.raises(StoreError, match=re.escape("not a x2 pair")):
        centroids(data, weights)
    assert main(["centroids", data, "-m", weights, "--scale", "3"]) == 1
    assert "weights are for x2, but x3 was requested" in capsys.readouterr().err


def test_checkpoint_that_does_not_load_names_missing_keys(dataset, weights, tmp_path, capsys):
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if "IMDB2.c3" not in k}
    torch.save(state, tmp_path / "partial.pth")
    data = copy_of(dataset, tmp_path)
    assert main(["centroids", data, "-m", tmp_path / "partial.pth"]) == 1
    err = capsys.readouterr().err
    assert "partial.pth" in err and "2 missing keys" in err and "IMDB2.c3.weight" in err
    assert not (data / "sr_pretrained").exists()
