"""``import srprep``: the public names load on first use (no torch at import), and the patch dataset's
BasicSR-style mode feeds a plain torch DataLoader."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import srprep
from srprep.io.images import write_image
from tests.train.conftest import coordinate_images

REPO = Path(__file__).resolve().parents[1]


def test_import_srprep_is_light_and_exports_the_notebook_names():
    code = ("import sys, srprep; heavy = [m for m in ('torch', 'cv2', 'numpy') if m in sys.modules]; "
            "print(heavy); srprep.imresize_matlab; print('torch' in sys.modules); srprep.load_pretrained; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True,
                         timeout=300).stdout.split()
    assert out == ["[]", "False", "True"]  # a numpy function does not pull torch in; a network loader does
    assert {"imresize_matlab", "open_store", "load_pretrained", "PatchDataset", "patch_dataset"} <= set(srprep.__all__)
    for name in srprep.__all__:
        assert getattr(srprep, name) is not None and name in dir(srprep)
    from srprep.ops.imresize import imresize_matlab
    assert srprep.imresize_matlab is imresize_matlab
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        srprep.nope


def _coordinate_dataset(root: Path, scale: int) -> Path:
    """HR and LR x{scale} images whose pixels say where they are (see coordinate_images), three keys."""
    for i, (h, w) in enumerate([(40, 56), (48, 40), (64, 64)]):
        hr, lr = coordinate_images(h, w, scale)
        write_image(root / "HR" / f"k{i}.png", hr)
        write_image(root / f"X{scale}" / f"k{i}x{scale}.png", lr)
    return root


DIHEDRAL = [lambda a, k=k, t=t: np.rot90(a.T if t else a, k) for t in (False, True) for k in range(4)]


def _undo(patch: np.ndarray):
    """(which of the 8 flips/rotations undoes it, the undone patch) for a crop of a coordinate image, (H, W, 3)
    uint8: undone, its rows count down the first channel and its columns along the second, in equal steps."""
    for index, undo in enumerate(DIHEDRAL):
        plain = np.stack([undo(patch[..., c]) for c in range(3)], -1).astype(int)
        down, along = np.diff(plain[..., 0], axis=0) % 256, np.diff(plain[..., 1], axis=1) % 256
        if (0 < down[0, 0] < 128 and (down == down[0, 0]).all() and (along == down[0, 0]).all()
                and (np.diff(plain[..., 0], axis=1) == 0).all() and (np.diff(plain[..., 1], axis=0) == 0).all()):
            return index, plain
    raise AssertionError("not a flipped/rotated crop of the image")


def test_basicsr_mode_gives_lq_gt_tensors_with_the_same_flips_to_a_plain_dataloader(tmp_path):
    scale, patch = 2, 16
    ds = srprep.patch_dataset(_coordinate_dataset(tmp_path, scale), scale=scale, patch=patch, seed=3)
    assert len(ds) == 3
    loader = torch.utils.data.DataLoader(ds, batch_size=3, shuffle=True, num_workers=2,
                                         generator=torch.Generator().manual_seed(0))
    transforms = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        [batch] = list(loader)
        assert sorted(batch["key"]) == ["k0", "k1", "k2"]
        assert batch["lq"].shape == (3, 3, patch // scale, patch // scale) and batch["gt"].shape == (3, 3, patch, patch)
        assert batch["lq"].dtype == batch["gt"].dtype == torch.float32
        assert 0 <= float(batch["gt"].min()) and float(batch["gt"].max()) <= 1
        for lq, gt in zip(batch["lq"], batch["gt"]):
            as_u8 = [np.rint(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8) for x in (lq, gt)]
            (t_lq, plain_lq), (t_gt, plain_gt) = _undo(as_u8[0]), _undo(as_u8[1])
            assert t_lq == t_gt  # one flip/rotation for the pair
            assert np.array_equal(plain_lq, plain_gt[::scale, ::scale])  # LR pixel (i, j) = HR (s i, s j)
            transforms.add(t_gt)
    assert len(transforms) > 2  # the flips and rotations are drawn, and applied


def test_basicsr_mode_is_the_trainers_sample_with_its_flags_applied(tmp_path):
    root = _coordinate_dataset(tmp_path, 2)
    basic = srprep.patch_dataset(root, scale=2, patch=16, seed=5)
    ours = srprep.patch_dataset(root, scale=2, patch=16, seed=5, mode="srprep")
    from srprep.train.augment import dihedral
    from srprep.train.data import sample_rng

    n = len(basic)
    basic.set_epoch(2)
    for i in range(n):
        item = basic[i]
        raw = ours._sample(ours.keys[i], sample_rng(5, 2 * n + i))
        for field, name in (("hr", "gt"), ("lr", "lq")):
            want = dihedral(torch.from_numpy(raw[field]).permute(2, 0, 1)[None], torch.from_numpy(raw["flags"])[None])
            assert torch.equal(item[name], want[0].float() / 255)
    with pytest.raises(IndexError):
        basic[n]
    with pytest.raises(ValueError, match="mode must be one of"):
        srprep.patch_dataset(root, scale=2, patch=16, mode="keras")
