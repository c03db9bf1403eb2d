"""srprep.io.png: the fast PNG encoder and the libspng decoding path give exactly OpenCV's (libpng's) and
Pillow's pixels, on every bundled photo and on the odd shapes and kinds of file."""
import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from srprep.errors import ImageError
from srprep.io import images, png
from srprep.io.images import decode_image, encode_image, read_image, write_image


def _bundled(samples):
    return sorted(samples.glob("*/*.png"))


def _cv2_rgb(data: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr.ndim == 2:
        return arr
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)


def _chunks(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        kinds.append(data[pos + 4:pos + 8])
        pos += 12 + n
    return kinds


def test_fast_encoder_is_lossless_for_libpng_and_pillow_on_every_bundled_image(samples):
    for path in _bundled(samples):
        img = read_image(path)
        data = png.encode_fast(img)
        np.testing.assert_array_equal(_cv2_rgb(data), img, err_msg=path.name)
        with Image.open(io.BytesIO(data)) as im:
            assert im.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(im), img, err_msg=path.name)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 7, 3), (7, 1, 3), (5, 9), (1, 1), (33, 17, 3)])
def test_fast_encoder_odd_shapes_and_grey(rng, shape):
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    data = png.encode_fast(img)
    np.testing.assert_array_equal(_cv2_rgb(data), img)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == ("L" if len(shape) == 2 else "RGB")


def test_fast_encoder_takes_any_strides(samples):
    img = read_image(samples / "set5" / "baby.png")
    view = img[::2, ::-3]
    np.testing.assert_array_equal(_cv2_rgb(png.encode_fast(view)), view)


def test_fast_encoder_splits_large_data_into_idat_chunks(samples, monkeypatch):
    monkeypatch.setattr(png, "_IDAT_BYTES", 4096)
    img = read_image(samples / "kodak" / "kodim01.png")
    data = png.encode_fast(img)
    kinds = _chunks(data)
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and kinds.count(b"IDAT") > 10
    np.testing.assert_array_equal(_cv2_rgb(data), img)
    with Image.open(io.BytesIO(data)) as im:
        im.verify()  # every chunk's CRC


def test_level_1_is_the_fast_encoder_and_the_others_are_libpng(samples):
    img = read_image(samples / "set5" / "bird.png")
    assert encode_image(img, ".png", png_level=1) == png.encode_fast(img)
    for level in (0, 2, 6, 9):
        ok, ref = cv2.imencode(".png", img[:, :, ::-1].copy(), [cv2.IMWRITE_PNG_COMPRESSION, level])
        assert encode_image(img, ".png", png_level=level) == ref.tobytes()


def test_fast_level_is_close_to_libpng_level_1_in_size(samples):
    # Stated in the module doc: a few percent larger than libpng's level 1 on photos, far smaller than level 0.
    fast = libpng1 = stored = 0
    for path in sorted((samples / "kodak").glob("*.png")):
        img = read_image(path)
        fast += len(encode_image(img, png_level=1))
        libpng1 += len(cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1])
        stored += len(encode_image(img, png_level=0))
    assert fast < 1.10 * libpng1 and fast < 0.8 * stored


@pytest.mark.parametrize("level", [0, 1, 3])
def test_libspng_path_gives_opencvs_pixels_on_every_bundled_image(samples, level):
    for path in _bundled(samples):
        img = read_image(path)
        data = encode_image(img, png_level=level)
        mv = memoryview(data)
        fast = png.decode_fast(data, mv)
        assert fast is not None
        np.testing.assert_array_equal(fast, _cv2_rgb(data))
        np.testing.assert_array_equal(decode_image(memoryview(data), "x.png"), img)  # other buffers too


def _pil_png(array: np.ndarray, mode: str | None = None, **kw) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def test_libspng_path_grey_and_rgba_equal_opencv(rng):
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    rgba = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    for data in (_pil_png(grey), _pil_png(rgba)):
        fast = png.decode_fast(data, memoryview(data))
        assert fast is not None
        np.testing.assert_array_equal(fast, _cv2_rgb(data))
    # through read_image: the alpha policies see the same samples as before
    assert decode_image(_pil_png(rgba), "a.png", alpha="drop").shape == (20, 30, 3)
    with pytest.raises(ImageError, match="alpha"):
        decode_image(_pil_png(rgba), "a.png")


def test_palette_16_bit_and_transparency_keys_are_left_to_opencv(rng, samples):
    img = read_image(samples / "set5" / "head.png")
    palette = _pil_png(img, "P")
    deep = cv2.imencode(".png", (img.astype(np.uint16) * 257)[:, :, ::-1].copy())[1].tobytes()
    keyed = _pil_png(img, transparency=(0, 0, 0))
    for data in (palette, deep, keyed):
        assert png.decode_fast(data, memoryview(data)) is None
    assert decode_image(palette, "p.png").shape == img.shape
    assert decode_image(deep, "d.png", depth16="shift").dtype == np.uint8


def test_damaged_fast_path_file_is_one_line_image_error(tmp_path, samples):
    img = read_image(samples / "set5" / "bird.png")
    data = bytearray(encode_image(img))
    idat = data.find(b"IDAT")
    data[idat + 200:idat + 400] = bytes(200)  # zeros in the compressed stream, CRC left wrong
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError) as err:
        read_image(path)
    assert str(err.value).startswith(f"{path}:") and "\n" not in str(err.value)


def test_write_image_uses_the_fast_encoder_by_default(tmp_path, samples):
    img = read_image(samples / "set5" / "woman.png")
    write_image(tmp_path / "w.png", img)
    assert (tmp_path / "w.png").read_bytes() == png.encode_fast(img)
    assert images.encode_image(img) == png.encode_fast(img)


_ENCODE_CROPS = r"""
import hashlib, sys
from pathlib import Path
import cv2, numpy as np
from srprep.io import png
from srprep.io.images import read_image
crops = []
for i, path in enumerate(sorted(Path(sys.argv[1]).glob("*.png")) * 2):
    img = read_image(path)[17 * i % 40:, 23 * i % 40:]
    lr = cv2.resize(img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2], (img.shape[1] // 2, img.shape[0] // 2),
                    interpolation=cv2.INTER_AREA)
    crops += [lr[y:y + 8, x:x + 8] for y in range(0, lr.shape[0] - 7, 4) for x in range(0, lr.shape[1] - 7, 4)]
    if i < 4:
        crops += [img[y:y + 16, x:x + 16] for y in range(0, img.shape[0] - 15, 8) for x in range(0, img.shape[1] - 15, 8)]
order = np.random.default_rng(int(sys.argv[2])).permutation(len(crops)) if int(sys.argv[2]) else range(len(crops))
out = {int(i): hashlib.sha256(png.encode_fast(crops[i])).hexdigest()[:16] for i in order}
print(len(crops), " ".join(out[i] for i in range(len(crops))))
"""


def test_fast_encoder_bytes_do_not_depend_on_the_process_or_the_order(samples):
    """The same pixels give the same file whichever process encodes them, in whatever order (pack's workers, a
    resumed run). ISA-L's level-1 deflate, the encoder before, failed this: 8x8 and 16x16 crops of the
    bundled photos (~26,000 per run) encoded in fresh processes (another hash seed each, another order)
    differed for 1-3 crops in about one run in four, whether through its one-shot call or a fresh stream
    (so this test caught it about one time in four; libdeflate has never differed here in 40 runs)."""
    import os
    import subprocess
    import sys

    runs = [subprocess.run([sys.executable, "-c", _ENCODE_CROPS, str(samples / "kodak"), str(seed)],
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}, capture_output=True, text=True,
                           check=True).stdout.split() for seed in range(4)]
    assert int(runs[0][0]) > 25000
    for run in runs[1:]:
        assert [i for i, (a, b) in enumerate(zip(runs[0][1:], run[1:])) if a != b] == []
