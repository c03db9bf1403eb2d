"""JPEG: output equals the chosen real encoder's, byte for byte; the batched path equals the single path."""
import io

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from srprep.ops.degrade.jpeg import jpeg_decode, jpeg_encode, jpeg_roundtrip, jpeg_torch


@pytest.mark.parametrize("q", [10, 30, 50, 75, 95])
def test_cv2_backend_equals_direct_opencv(kodak, q):
    img = kodak[0]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    assert ok
    assert jpeg_encode(img, q) == buf.tobytes()
    direct = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    out = jpeg_roundtrip(img, q)
    assert out.dtype == np.uint8 and np.array_equal(out, direct)


@pytest.mark.parametrize("q", [30, 50, 95])
def test_pil_backend_equals_direct_pil(kodak, q):
    img = kodak[1]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=q)
    assert jpeg_encode(img, q, "pil") == buf.getvalue()
    direct = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert np.array_equal(jpeg_roundtrip(img, q, "pil"), direct)


def test_quality_matters_and_float_input(kodak):
    img = kodak[2][:128, :128]
    lo, hi = jpeg_roundtrip(img, 20), jpeg_roundtrip(img, 90)
    err = lambda a: np.abs(a.astype(int) - img.astype(int)).mean()  # noqa: E731
    assert err(lo) > err(hi) > 0
    f = jpeg_roundtrip(img.astype(np.float32) / 255, 50)
    assert f.dtype == np.float32 and np.array_equal(np.rint(f * 255).astype(np.uint8), jpeg_roundtrip(img, 50))
    g = jpeg_roundtrip(img[:, :, 1], 50)
    assert g.shape == (128, 128)
    assert np.array_equal(jpeg_decode(jpeg_encode(img[:, :, 1:2], 50), gray=True), g)


def test_bad_quality_and_backend(kodak):
    with pytest.raises(ValueError):
        jpeg_encode(kodak[0], 0)
    with pytest.raises(ValueError):
        jpeg_encode(kodak[0], 50.5)
    with pytest.raises(ValueError):
        jpeg_encode(kodak[0], 50, "libjpeg")


def test_torch_batch_equals_single_image_path(kodak):
    imgs = [k[:96, :112] for k in kodak[:4]]
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255
    qs = [30, 50, 70, 95]
    y = jpeg_torch(x, qs)
    assert y.shape == x.shape and y.dtype == x.dtype
    for i in range(4):
        got = torch.round(y[i] * 255).byte().permute(1, 2, 0).numpy()
        assert np.array_equal(got, jpeg_roundtrip(imgs[i], qs[i]))
    assert torch.equal(jpeg_torch(x, 50), jpeg_torch(x, [50] * 4))
