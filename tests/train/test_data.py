"""Patch sampling: crops on the scale grid, determinism whatever the workers, resumable, sharded, any store."""
import numpy as np
import pytest
import torch

from srprep.errors import StoreError
from srprep.ops.imresize import imresize_matlab
from srprep.train.config import ConfigError, load_config
from srprep.train.data import BatchIndexSampler, PatchDataset, build_dataset, check_fields, make_loader

from .conftest import DictStore, coordinate_images


def synthetic_dataset(scale=2, patch=16, seed=0, **kw):
    hr_items, lr_items = {}, {}
    for i, (h, w) in enumerate([(20, 30), (16, 16), (40, 24)]):
        hr_items[f"k{i}"], lr_items[f"k{i}"] = coordinate_images(h, w, scale)
    stores = {"hr": DictStore(hr_items), "lr": DictStore(lr_items)}
    keys = list(hr_items)
    grid = check_fields(stores, keys, scale=scale, patch=patch, lr_fields=["lr"])
    return PatchDataset(stores, keys, grid, scale=scale, patch=patch, seed=seed, lr_fields=["lr"], **kw)


def test_crops_start_on_the_scale_grid_and_pair_up():
    for scale in (2, 3, 4):
        ds = synthetic_dataset(scale=scale, patch=4 * scale)
        for index in range(60):
            s = ds[index]
            hr, lr = s["hr"], s["lr"]
            assert hr.shape == (4 * scale, 4 * scale, 3) and lr.shape == (4, 4, 3)
            np.testing.assert_array_equal(hr[::scale, ::scale], lr)  # the LR window sits on the HR window
            c = hr[0, 0].astype(int)
            i, j = c[0] + 256 * (c[2] % 16), c[1] + 256 * (c[2] // 16)
            assert i % scale == 0 and j % scale == 0


def test_every_key_once_per_epoch_and_seeded():
    ds = synthetic_dataset()
    for epoch in range(3):
        assert sorted(ds.key_at(epoch * 3 + i) for i in range(3)) == ["k0", "k1", "k2"]
    other = synthetic_dataset(seed=1)
    same = synthetic_dataset(seed=0)
    assert all(np.array_equal(ds[i]["hr"], same[i]["hr"]) for i in range(10))
    assert any(not np.array_equal(ds[i]["hr"], other[i]["hr"]) for i in range(10))


def batches(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def test_batches_do_not_depend_on_workers_and_resume_by_step():
    # Use OpenCV's thread pool in this process first: forked workers must still deliver (a worker that calls
    # cv2.setNumThreads after that deadlocks).
    imresize_matlab(np.zeros((1024, 1024, 3), np.uint8), 0.5)
    ds = synthetic_dataset()
    ref = batches(make_loader(ds, batch=4, start_step=0, workers=0), 4)
    with_workers = batches(make_loader(ds, batch=4, start_step=0, workers=2, timeout=120), 4)
    resumed = batches(make_loader(ds, batch=4, start_step=2, workers=0), 2)
    for a, b in zip(ref, with_workers):
        assert all(torch.equal(a[k], b[k]) for k in ("hr", "lr", "flags"))
    for a, b in zip(ref[2:], resumed):
        assert all(torch.equal(a[k], b[k]) for k in ("hr", "lr", "flags"))


def test_processes_share_the_global_stream():
    one = BatchIndexSampler(8, start_step=3)
    r0, r1 = BatchIndexSampler(4, 3, rank=0, world=2), BatchIndexSampler(4, 3, rank=1, world=2)
    assert next(iter(one)) == next(iter(r0)) + next(iter(r1))
    with pytest.raises(ValueError):
        BatchIndexSampler(4, rank=2, world=2)


def test_folder_lmdb_and_hdf5_give_the_same_batches(kodak_x2, kodak_lmdb, kodak_hdf5):
    out = []
    for root in (kodak_x2, kodak_lmdb, kodak_hdf5):
        cfg = load_config(None, [f"data.root={root}", "data.patch=64", "val.every=0"])
        ds = build_dataset(cfg, holdout=["kodim08"])
        assert len(ds.keys) == 7 and "kodim08" not in ds.keys
        if root == kodak_lmdb:  # read with one pread per window (the offsets table), same pixels as the folder
            assert ds.stores["hr"]._load_offsets() and ds.stores["lr"]._load_offsets()
        out.append(batches(make_loader(ds, batch=3, start_step=5, workers=0), 2))
    for other in out[1:]:
        for a, b in zip(out[0], other):
            assert all(torch.equal(a[k], b[k]) for k in ("hr", "lr", "flags"))


def test_clear_errors(kodak_x2, kodak_eco, kodak_lmdb):
    with pytest.raises(StoreError, match=r"smaller than data\.patch=512"):
        build_dataset(load_config(None, [f"data.root={kodak_x2}", "data.patch=512"]))
    with pytest.raises(StoreError, match=r"X2\.lmdb \(lr\): item 'kodim01' is 250x250, and 500x500 in .*HR\.lmdb "
                                         r"\(hr\): x2, but model\.scale is 4"):
        build_dataset(load_config(None, [f"data.root={kodak_lmdb}", "model.scale=4", "data.lr=X2", "data.patch=64"]))
    with pytest.raises(StoreError, match=r"names end in x2: LR images of another scale\? model\.scale is 4"):
        build_dataset(load_config(None, [f"data.root={kodak_x2}", "model.scale=4", "data.lr=X2", "data.patch=64"]))
    with pytest.raises(StoreError, match=r"no field 'sr_pretrained' \(ECO is on .*srprep centroids"):
        build_dataset(load_config(None, [f"data.root={kodak_x2}", "eco.enabled=true"]))
    with pytest.raises(StoreError, match=r"no field 'X3'"):
        build_dataset(load_config(None, [f"data.root={kodak_x2}", "model.scale=3", "data.patch=96"]))
    ds = build_dataset(load_config(None, [f"data.root={kodak_eco}", "eco.enabled=true", "data.patch=32"]))
    sample = ds[0]
    assert set(sample) == {"hr", "lr", "hr_c", "lr_c", "flags"}
    assert sample["hr_c"].shape == sample["hr"].shape and sample["lr_c"].shape == sample["lr"].shape


# --- Real-ESRGAN's procedure: GT crop-or-pad to crop_pad, degrade, then the paired patch --------------------

def basicsr_augment(img, hflip, vflip, rot90):
    """BasicSR's ``augment``: cv2.flip(img, 1), cv2.flip(img, 0), img.transpose(1, 0, 2), in that order."""
    if hflip:
        img = img[:, ::-1]
    if vflip:
        img = img[::-1]
    if rot90:
        img = img.transpose(1, 0, 2)
    return img


def realesrgan_gt(img, rng, cp, flip, rot):
    """RealESRGANDataset.__getitem__'s GT, with the random draws of the documented order: flags, then the
    crop corner (upstream: augment, pad bottom/right by reflect-101 to cp when a side is short, crop cp)."""
    f = rng.random(3) < 0.5
    f[0] &= flip
    f[1:] &= rot
    img = basicsr_augment(img, *f)
    h, w = img.shape[:2]
    img = np.pad(img, ((0, max(0, cp - h)), (0, max(0, cp - w)), (0, 0)), mode="reflect")  # == reflect-101
    h, w = img.shape[:2]
    top = int(rng.integers(0, h - cp + 1))
    left = int(rng.integers(0, w - cp + 1))
    return img[top:top + cp, left:left + cp]


@pytest.mark.parametrize("flip, rot", [(True, True), (True, False), (False, False)])
def test_crop_pad_samples_draw_what_the_docs_say(flip, rot):
    from srprep.ops.degrade import DegradationConfig, draw_params
    from srprep.train.data import sample_rng

    cp, scale, patch = 400, 4, 256
    g = np.random.default_rng(0)
    # larger than 400 both ways, shorter in one side (padded), shorter in both (padded twice over)
    sizes = {"big": (480, 520), "short": (300, 450), "tiny": (150, 120)}
    items = {k: g.integers(0, 256, (h, w, 3), dtype=np.uint8) for k, (h, w) in sizes.items()}
    stores = {"hr": DictStore(items)}
    keys = list(items)
    grid = check_fields(stores, keys, scale=scale, patch=2 * scale, lr_fields=[])
    cfg = DegradationConfig(scale=scale)
    ds = PatchDataset(stores, keys, grid, scale=scale, patch=patch, seed=3, lr_fields=[], flip=flip, rot90=rot,
                      degrade=cfg, crop_pad=cp)
    seen = set()
    for index in range(24):
        sample = ds[index]
        rng = sample_rng(3, index)
        img = items[ds.key_at(index)]
        expected = realesrgan_gt(img, rng, cp, flip, rot)
        assert sample["hr"].shape == (cp, cp, 3) and np.array_equal(sample["hr"], expected), index
        assert sample["params"] == draw_params(cfg, rng, (cp, cp))  # drawn for the 400 GT: LR 100
        assert sample["params"].final.size == [cp // scale, cp // scale]
        lcp, lp = cp // scale, patch // scale
        assert sample["crop"].tolist() == [int(rng.integers(0, lcp - lp + 1)), int(rng.integers(0, lcp - lp + 1))]
        assert not sample["flags"].any()  # the flips are already in the GT
        seen.add(ds.key_at(index))
    assert seen == set(keys)


def test_crop_pad_and_queue_options_are_checked():
    base = ["data.lr=null", "degrade.enabled=true", "model.scale=4", "data.patch=256", "data.batch=12"]
    assert load_config(None, base + ["degrade.crop_pad=400", "degrade.queue=180"]).degrade.queue == 180
    for bad, what in [(["degrade.crop_pad=200"], "at least data.patch"), (["degrade.crop_pad=402"], "multiple"),
                      (["degrade.queue=100"], "multiple of data.batch")]:
        with pytest.raises(ConfigError, match=what):
            load_config(None, base + bad)
    with pytest.raises(ConfigError, match="degrade.enabled=true"):
        load_config(None, ["degrade.queue=16", "data.batch=8"])


def test_a_corrupt_training_image_is_found_before_step_0_in_one_line_and_a_pass_is_remembered(kodak_x2, tmp_path):
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    data = tmp_path / "DATA"
    shutil.copytree(kodak_x2, data, ignore=shutil.ignore_patterns(".srprep"))
    bad = data / "HR" / "kodim03.png"
    good = bad.read_bytes()
    bad.write_bytes(good[: len(good) // 2])

    def train(run, *extra):
        return subprocess.run([sys.executable, "-m", "srprep", "train", "-c", str(repo / "srprep/configs/tiny_cpu.yaml"),
                               f"data.root={data}", "train.iters=4", "val.every=0", "train.log_every=2",
                               "data.patch=32", "data.batch=2", "train.cpu_threads=1", "train.tensorboard=false",
                               "--run-dir", str(run), *extra], capture_output=True, text=True, cwd=repo, timeout=600)

    proc = train(tmp_path / "run1")
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()[-1]
    assert err == f"error: {bad}: truncated or corrupt PNG (no IEND chunk); found before training started", err
    assert not (tmp_path / "run1/checkpoints").exists()

    bad.write_bytes(good)
    stat = bad.stat()
    proc = train(tmp_path / "run2", "data.workers=1")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads((tmp_path / "run2/.srprep/data_check.json").read_text())["passed"]) == 1
    # corrupted in place with the same size and time: the remembered check passes, the image fails mid-run
    # inside a DataLoader worker, and the error is still one line naming the file
    bad.write_bytes(good[:100] + bytes(len(good) - 100))
    os.utime(bad, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    proc = train(tmp_path / "run2", "data.workers=1", "train.iters=40", "--resume", "auto")
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith(f"error: {bad}: ") and "Traceback" not in proc.stderr and len(err) < 300, err
