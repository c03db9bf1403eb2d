"""Tests of srprep.io.images: formats, colour/alpha/depth policies, failures, atomic writes, .npy arrays."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from srprep.errors import ImageError
from srprep.io import images
from srprep.io.images import (
    IMAGE_EXTENSIONS,
    decode_image,
    encode_image,
    image_size,
    read_array,
    read_image,
    write_array,
    write_image,
)

SET5_SHAPES = {"baby": (512, 512), "bird": (288, 288), "butterfly": (256, 256), "head": (280, 280),
               "woman": (344, 228)}
LOSSLESS = [".png", ".bmp", ".tif", ".tiff"]


def pil_rgb(path_or_bytes) -> np.ndarray:
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as im:
        return np.asarray(im.convert("RGB"))


def pil_bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def photo(samples) -> np.ndarray:
    """A real 500x500 photo (RGB uint8): JPEG error statistics need natural content, not noise."""
    return read_image(samples / "kodak" / "kodim03.png")


@pytest.fixture
def small(rng) -> np.ndarray:
    return rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)


def assert_image_error(excinfo, path_or_name) -> None:
    assert str(path_or_name) in str(excinfo.value), str(excinfo.value)


# ---------------------------------------------------------------------------------------- round trips


def test_extensions():
    assert IMAGE_EXTENSIONS == (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@pytest.mark.parametrize("ext", LOSSLESS + [".PNG", ".TIF"])
def test_lossless_round_trip_is_pixel_exact(tmp_path, small, ext):
    path = tmp_path / f"a{ext}"
    write_image(path, small)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == small.shape
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, small)
    # Other tools see the same pixels (the channel order on disk is right).
    np.testing.assert_array_equal(pil_rgb(path), small)


@pytest.mark.parametrize("ext", LOSSLESS)
def test_grey_array_round_trip(tmp_path, small, ext):
    grey = small[:, :, 1].copy()
    path = tmp_path / f"g{ext}"
    write_image(path, grey)
    with Image.open(path) as im:
        assert im.mode == "L"  # stored as a 1-channel file
    out = read_image(path)
    assert out.shape == grey.shape + (3,)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


@pytest.mark.parametrize("level", range(10))
def test_png_levels_are_lossless(small, level):
    np.testing.assert_array_equal(decode_image(encode_image(small, ".png", png_level=level), "x.png"), small)


def test_png_level_trades_size(photo):
    assert len(encode_image(photo, "png", png_level=9)) < len(encode_image(photo, "png", png_level=0))


def test_non_contiguous_input_is_written_correctly(small):
    view = small[:, ::-1]
    np.testing.assert_array_equal(decode_image(encode_image(view), "v.png"), view)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".JPG"])
def test_jpeg_round_trip_is_close(tmp_path, photo, ext):
    # Stated tolerance at quality 95 on a real photo: PSNR >= 38 dB and mean |error| < 1.5 levels.
    path = tmp_path / f"p{ext}"
    write_image(path, photo, jpeg_quality=95)
    out = read_image(path)
    assert out.shape == photo.shape and out.dtype == np.uint8
    err = out.astype(np.float64) - photo
    psnr = 10 * np.log10(255.0**2 / np.mean(err**2))
    assert psnr >= 38.0, psnr
    assert np.abs(err).mean() < 1.5


def test_jpeg_decoder_is_cv2_and_agrees_with_pillow(photo):
    data = encode_image(photo, ".jpg", jpeg_quality=90)
    out = decode_image(data, "p.jpg")
    direct_cv2 = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED),
                              cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(out, direct_cv2)  # the pinned decoder
    # Both bundle libjpeg-turbo with the same defaults; identical on the reference machine, and never more
    # than one level apart (IDCT rounding) on other builds.
    assert np.abs(out.astype(int) - pil_rgb(data)).max() <= 1


@pytest.mark.parametrize("kw", [{"subsampling": 0}, {"subsampling": 2}, {"progressive": True}])
def test_jpeg_variants_from_pillow(photo, kw):
    data = pil_bytes(Image.fromarray(photo), "JPEG", quality=92, **kw)
    assert np.abs(decode_image(data, "v.jpg").astype(int) - pil_rgb(data)).max() <= 1


def test_jpeg_quality_changes_size(photo):
    assert len(encode_image(photo, ".jpg", jpeg_quality=50)) < len(encode_image(photo, ".jpg", jpeg_quality=95))


@pytest.mark.parametrize(
    "writer",
    ["pil-raw", "pil-lzw", "pil-deflate", "pil-packbits", "cv2-lzw", "cv2-none", "pil-rgba-opaque", "pil-1bit"],
)
def test_tiff_layouts_and_compressions(tmp_path, photo, writer):
    # Pillow decodes 8-bit TIFFs; whatever wrote the file, the pixels are exact.
    img = photo[:123, :77]
    path = tmp_path / "t.tif"
    if writer.startswith("cv2"):
        params = [] if writer == "cv2-lzw" else [cv2.IMWRITE_TIFF_COMPRESSION, cv2.IMWRITE_TIFF_COMPRESSION_NONE]
        assert cv2.imwrite(str(path), img[:, :, ::-1], params)
        expected = img
    elif writer == "pil-rgba-opaque":
        Image.fromarray(img).convert("RGBA").save(path, "TIFF")
        expected = img
    elif writer == "pil-1bit":
        Image.fromarray(img[:, :, 0] > 100).save(path, "TIFF")
        expected = np.repeat(np.where(img[:, :, :1] > 100, 255, 0), 3, axis=2)
    else:
        comp = {"pil-raw": None, "pil-lzw": "tiff_lzw", "pil-deflate": "tiff_adobe_deflate",
                "pil-packbits": "packbits"}[writer]
        Image.fromarray(img).save(path, "TIFF", compression=comp)
        expected = img
    np.testing.assert_array_equal(read_image(path), expected)
    assert image_size(path) == img.shape[:2]


def test_cmyk_tiff_converted_like_pillow(tmp_path, photo):
    path = tmp_path / "cmyk.tif"
    Image.fromarray(photo).convert("CMYK").save(path)
    np.testing.assert_array_equal(read_image(path), pil_rgb(path))


def test_grey_jpeg_becomes_three_channels(photo):
    grey = photo[:, :, 0].copy()
    out = decode_image(encode_image(grey, ".jpg"), "g.jpg")
    assert out.shape == grey.shape + (3,)
    assert (out[:, :, 0] == out[:, :, 1]).all() and (out[:, :, 1] == out[:, :, 2]).all()
    assert np.abs(out[:, :, 0].astype(int) - grey).mean() < 1.5


def test_exif_orientation_is_not_applied(small):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = pil_bytes(Image.fromarray(small), "JPEG", quality=95, exif=exif.tobytes())
    assert decode_image(data, "o.jpg").shape == small.shape


def test_decode_accepts_memoryview_and_bytearray(small):
    data = encode_image(small, ".png")
    np.testing.assert_array_equal(decode_image(memoryview(data), "k1"), small)
    np.testing.assert_array_equal(decode_image(bytearray(data), "k2"), small)
    jpg = encode_image(small, ".jpg")
    np.testing.assert_array_equal(decode_image(memoryview(jpg), "k3"), decode_image(jpg, "k3"))


def test_content_decides_format_not_extension(tmp_path, small, caplog):
    path = tmp_path / "really_a_jpeg.png"
    path.write_bytes(encode_image(small, ".jpg"))
    with caplog.at_level("WARNING", logger="srprep.io.images"):
        out = read_image(path)
    np.testing.assert_array_equal(out, decode_image(path.read_bytes(), "x.jpg"))
    assert "JPEG" in caplog.text and "really_a_jpeg.png" in caplog.text


# ---------------------------------------------------------------------------------------- real data


@pytest.mark.parametrize("name", sorted(SET5_SHAPES))
def test_set5_shapes_and_pixels_match_pil_and_cv2(ref_data, name):
    path = ref_data / "benchmark" / "Set5" / "HR" / f"{name}.png"
    img = read_image(path)
    assert img.shape == SET5_SHAPES[name] + (3,) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, pil_rgb(path))
    np.testing.assert_array_equal(img, cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    assert image_size(path) == SET5_SHAPES[name]


def test_bundled_samples_read_like_pil(samples):
    paths = sorted(samples.glob("*/*.png"))
    assert len(paths) == 13
    for p in paths:
        img = read_image(p)
        np.testing.assert_array_equal(img, pil_rgb(p))
        assert image_size(p) == img.shape[:2]


# ---------------------------------------------------------------------------------------- grey / alpha


def test_grey_png_gives_three_identical_channels(tmp_path, small):
    grey = small[:, :, 0].copy()
    path = tmp_path / "grey.png"
    Image.fromarray(grey, "L").save(path)
    out = read_image(path)
    assert out.shape == grey.shape + (3,)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


def test_one_bit_png(tmp_path, small):
    bits = small[:, :, 0] > 127
    path = tmp_path / "bits.png"
    Image.fromarray(bits).convert("1").save(path)
    out = read_image(path)
    np.testing.assert_array_equal(out[:, :, 0], np.where(bits, 255, 0))


def rgba_png(tmp_path, rgba: np.ndarray, name="rgba.png") -> Path:
    path = tmp_path / name
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def test_rgba_refused_by_default_with_option_named(tmp_path, small):
    a = np.full(small.shape[:2] + (1,), 255, np.uint8)
    a[3, 4] = 10
    path = rgba_png(tmp_path, np.concatenate([small, a], axis=2))
    with pytest.raises(ImageError) as ei:
        read_image(path)
    assert_image_error(ei, path)
    assert "alpha='flatten'" in str(ei.value)


def test_rgba_flatten_hand_computed_pixel(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (200, 100, 0, 128)
    rgba[0, 1] = (10, 20, 30, 0)  # fully transparent -> background
    rgba[0, 2] = (10, 20, 30, 255)  # opaque -> itself
    rgba[1, :] = (1, 254, 77, 1)
    path = rgba_png(tmp_path, rgba)
    white = read_image(path, alpha="flatten")
    # R: (200*128 + 255*127)/255 = 227.39 -> 227; G: (100*128 + 32385)/255 = 177.20 -> 177; B: 32385/255 = 127
    assert white[0, 0].tolist() == [227, 177, 127]
    assert white[0, 1].tolist() == [255, 255, 255]
    assert white[0, 2].tolist() == [10, 20, 30]
    # (1*1 + 255*254)/255 = 254.004 -> 254; (254 + 64770)/255 = 254.996 -> 255; (77 + 64770)/255 = 254.30 -> 254
    assert white[1, 0].tolist() == [254, 255, 254]
    black = read_image(path, alpha="flatten", background=(0, 0, 0))
    assert black[0, 0].tolist() == [100, 50, 0]  # 25600/255 = 100.39, 12800/255 = 50.20
    grey = read_image(path, alpha="flatten", background=128)
    assert grey[0, 1].tolist() == [128, 128, 128]
    dropped = read_image(path, alpha="drop")
    np.testing.assert_array_equal(dropped, rgba[:, :, :3])


def test_flatten_rounding_exhaustive(tmp_path):
    # Every (colour, alpha) pair once, against exact rational rounding (no ties exist: 255 is odd).
    c, a = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rgba = np.stack([c, 255 - c, np.full_like(c, 7), a], axis=2).astype(np.uint8)
    out = read_image(rgba_png(tmp_path, rgba), alpha="flatten", background=(255, 0, 100))
    num_r = c * a + 255 * (255 - a)
    num_g = (255 - c) * a
    num_b = 7 * a + 100 * (255 - a)
    for ch, num in enumerate([num_r, num_g, num_b]):
        expected = (2 * num + 255) // 510  # floor(num/255 + 1/2)
        np.testing.assert_array_equal(out[:, :, ch], expected)


def test_opaque_alpha_is_accepted_by_default(tmp_path, small):
    a = np.full(small.shape[:2] + (1,), 255, np.uint8)
    path = rgba_png(tmp_path, np.concatenate([small, a], axis=2))
    np.testing.assert_array_equal(read_image(path), small)


def test_la_png(tmp_path, small):
    grey = small[:, :, 0]
    a = np.full_like(grey, 255)
    path = tmp_path / "la.png"
    Image.fromarray(np.stack([grey, a], axis=2), "LA").save(path)
    out = read_image(path)  # opaque: just grey
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))

    a[0, 0] = 0
    a[0, 1] = 51
    Image.fromarray(np.stack([grey, a], axis=2), "LA").save(path)
    with pytest.raises(ImageError, match="alpha"):
        read_image(path)
    flat = read_image(path, alpha="flatten")
    assert flat[0, 0].tolist() == [255] * 3
    v = (int(grey[0, 1]) * 51 + 255 * 204 + 127) // 255
    assert flat[0, 1].tolist() == [v] * 3
    np.testing.assert_array_equal(flat[1:], np.repeat(grey[1:, :, None], 3, axis=2))


def test_la_tiff_alpha_is_not_lost(tmp_path, small):
    grey = small[:, :, 0]
    a = np.full_like(grey, 255)
    a[2, 2] = 0
    path = tmp_path / "la.tif"
    Image.fromarray(np.stack([grey, a], axis=2), "LA").save(path)
    with pytest.raises(ImageError, match="alpha"):
        read_image(path)
    assert read_image(path, alpha="flatten")[2, 2].tolist() == [255] * 3


def test_palette_with_transparency(tmp_path):
    p = Image.new("P", (4, 3))
    p.putpalette([0, 0, 0, 250, 10, 20] + [0] * 762)
    p.putpixel((1, 1), 1)
    path = tmp_path / "pal.png"
    p.save(path, transparency=0)
    with pytest.raises(ImageError, match="alpha"):
        read_image(path)
    out = read_image(path, alpha="flatten")
    assert out[1, 1].tolist() == [250, 10, 20]
    assert out[0, 0].tolist() == [255, 255, 255]


def test_bad_policy_values_raise_valueerror(tmp_path, small):
    path = tmp_path / "x.png"
    write_image(path, small)
    with pytest.raises(ValueError):
        read_image(path, alpha="keep")
    with pytest.raises(ValueError):
        read_image(path, depth16="truncate")


def test_bad_background_raises_valueerror(tmp_path, small):
    rgba = np.zeros((2, 2, 4), np.uint8)
    path = rgba_png(tmp_path, rgba)
    for bad in ((0, 0, 256), (0, 0), -1, (0.5, 0, 0)):
        with pytest.raises(ValueError):
            read_image(path, alpha="flatten", background=bad)
    with pytest.raises(ValueError):  # reported even when the image has no alpha
        decode_image(encode_image(small), "rgb.png", alpha="flatten", background="white")


# ---------------------------------------------------------------------------------------- 16-bit / float

V16 = np.array([0, 1, 128, 129, 257, 385, 386, 32767, 32768, 65534, 65535], np.uint16)
SCALED = [0, 0, 0, 1, 1, 1, 2, 127, 128, 255, 255]  # round(v * 255 / 65535), by hand
SHIFTED = [0, 0, 0, 0, 1, 1, 1, 127, 128, 255, 255]  # v >> 8


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_grey(tmp_path, ext):
    path = tmp_path / f"g16{ext}"
    assert cv2.imwrite(str(path), V16[None, :])
    with pytest.raises(ImageError) as ei:
        read_image(path)
    assert_image_error(ei, path)
    assert "depth16=" in str(ei.value) and "16-bit" in str(ei.value)
    scaled = read_image(path, depth16="scale")
    shifted = read_image(path, depth16="shift")
    assert scaled.shape == (1, len(V16), 3)
    assert scaled[0, :, 0].tolist() == SCALED and (scaled[..., 0] == scaled[..., 2]).all()
    assert shifted[0, :, 1].tolist() == SHIFTED


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_rgb_every_value(tmp_path, ext):
    # All 65536 values in R, reversed in G, constant in B; cv2 stores BGR.
    v = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    rgb = np.stack([v, 65535 - v, np.full_like(v, 40000)], axis=2)
    path = tmp_path / f"c16{ext}"
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])
    with pytest.raises(ImageError, match="depth16"):
        read_image(path)
    exact = np.floor(rgb.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(read_image(path, depth16="scale"), exact)
    np.testing.assert_array_equal(read_image(path, depth16="shift"), (rgb >> 8).astype(np.uint8))


def test_16bit_rgba_converts_then_flattens(tmp_path):
    bgra = np.zeros((1, 2, 4), np.uint16)
    bgra[0, 0] = (0, 0, 65535, 65535)  # opaque red
    bgra[0, 1] = (0, 0, 65535, 0)  # transparent
    path = tmp_path / "c16a.png"
    assert cv2.imwrite(str(path), bgra)
    out = read_image(path, depth16="scale", alpha="flatten")
    assert out.tolist() == [[[255, 0, 0], [255, 255, 255]]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int32])
def test_non_8_16_bit_tiff_refused(tmp_path, dtype):
    path = tmp_path / "f.tif"
    assert cv2.imwrite(str(path), np.ones((4, 5, 3), dtype))
    for depth16 in ("error", "scale"):
        with pytest.raises(ImageError) as ei:
            read_image(path, depth16=depth16)
        assert_image_error(ei, path)
        assert np.dtype(dtype).name in str(ei.value)


# ---------------------------------------------------------------------------------------- broken files


def test_missing_file(tmp_path):
    path = tmp_path / "nope" / "0001.png"
    with pytest.raises(ImageError) as ei:
        read_image(path)
    assert_image_error(ei, path)
    assert "no such file" in str(ei.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError) as ei:
        read_image(path)
    assert_image_error(ei, path)
    assert "empty" in str(ei.value)


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageError) as ei:
        read_image(path)
    assert_image_error(ei, path)


def test_directory_named_png(tmp_path):
    path = tmp_path / "dir.png"
    path.mkdir()
    with pytest.raises(ImageError) as ei:
        read_image(path)
    assert_image_error(ei, path)


@pytest.mark.parametrize("name", ["a.gif", "a.webp", "a", "a.png.bak"])
def test_unknown_extension(tmp_path, small, name):
    path = tmp_path / name
    path.write_bytes(encode_image(small))  # valid PNG content: the name alone is refused
    with pytest.raises(ImageError) as ei:
        read_image(path)
    assert_image_error(ei, path)
    assert "extension" in str(ei.value)
    with pytest.raises(ImageError):
        image_size(path)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif"])
def test_corrupt_bytes_after_valid_magic(tmp_path, small, ext):
    data = bytearray(encode_image(small, ext))
    rng = np.random.default_rng(1)
    body = rng.integers(0, 256, len(data) - 16, dtype=np.uint8).tobytes()
    path = tmp_path / f"corrupt{ext}"
    path.write_bytes(bytes(data[:8]) + body[:8] + b"\x00" * 16 + body[8:])
    with pytest.raises(ImageError) as ei:
        read_image(path)
    assert_image_error(ei, path)


def test_corrupt_png_data_crc(tmp_path, photo):
    data = bytearray(encode_image(photo, ".png"))
    data[len(data) // 2] ^= 0xFF  # inside IDAT: CRC and zlib stream are now wrong
    path = tmp_path / "flip.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError) as ei:
        read_image(path)
    assert_image_error(ei, path)


def cut_points(n: int) -> list[int]:
    return sorted({*range(1, 40), *np.linspace(40, n - 30, 25).astype(int).tolist(), *range(n - 30, n)})


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif"])
def test_truncated_file_never_returns_wrong_pixels(ext, rng):
    img = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (5, 5), 0)
    data = encode_image(img, ext)
    full = decode_image(data, "full" + ext)
    for n in cut_points(len(data)):
        name = f"cut{n}{ext}"
        with pytest.raises(ImageError) as ei:
            decode_image(data[:n], name)
        assert_image_error(ei, name)
    assert full.shape == img.shape


def test_truncated_png_and_jpeg_files(tmp_path, photo):
    png = encode_image(photo, ".png")
    jpg = encode_image(photo, ".jpg")
    prog = pil_bytes(Image.fromarray(photo), "JPEG", quality=95, progressive=True)
    cases = {"t.png": png[:-1], "t2.png": png[: len(png) // 2], "t.jpg": jpg[:-2], "t2.jpg": jpg[: len(jpg) // 2],
             "tp.jpg": prog[: len(prog) * 2 // 3], "tp2.jpeg": prog[:-1]}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ImageError) as ei:
            read_image(path)
        assert_image_error(ei, path)
        assert "truncated" in str(ei.value)


def test_truncation_caught_even_if_the_decoder_is_lenient(monkeypatch, photo):
    # cv2 4.x returns a grey-padded image for a truncated JPEG (libjpeg only warns), and libpng may stop
    # before the end of a PNG; srprep's own end-of-stream checks must catch both without cv2's help.
    real = cv2.imdecode
    png, jpg = encode_image(photo, ".png"), encode_image(photo, ".jpg")

    def lenient(buf, flags):  # decodes the whole image whatever part of the file it is given
        whole = png if bytes(buf[:4]) == b"\x89PNG" else jpg
        return real(np.frombuffer(whole, np.uint8), flags)

    monkeypatch.setattr(images.cv2, "imdecode", lenient)
    assert decode_image(png[:-4] + png[-4:], "ok.png").shape == photo.shape
    cases = {"t1.png": png[:-1], "t2.png": png[:-4], "t3.png": png[:-12], "t4.png": png[: len(png) // 2],
             "t1.jpg": jpg[:-1], "t2.jpg": jpg[:-2], "t3.jpg": jpg[: len(jpg) // 2]}
    for name, data in cases.items():
        with pytest.raises(ImageError, match="truncated") as ei:
            decode_image(data, name)
        assert_image_error(ei, name)


def test_truncated_jpeg_refused_even_if_pillow_accepts_truncation(monkeypatch, photo):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    jpg = encode_image(photo, ".jpg")
    with pytest.raises(ImageError, match="truncated"):
        decode_image(jpg[: len(jpg) - 100], "t.jpg")


def test_jpeg_with_trailing_bytes_is_accepted(photo):
    jpg = encode_image(photo, ".jpg")
    np.testing.assert_array_equal(decode_image(jpg + b"\x00" * 10, "pad.jpg"), decode_image(jpg, "ok.jpg"))


def test_truncated_tiff_refused_even_if_pillow_accepts_truncation(monkeypatch, photo):
    tif = encode_image(photo, ".tif")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    np.testing.assert_array_equal(decode_image(tif, "ok.tif"), photo)
    with pytest.raises(ImageError, match="truncated"):
        decode_image(tif[: len(tif) - 1000], "t.tif")


def test_decode_error_names_the_item():
    with pytest.raises(ImageError) as ei:
        decode_image(b"GIF89a....", "lmdb-key-0042")
    assert str(ei.value).startswith("lmdb-key-0042: ")
    with pytest.raises(ImageError, match="^k: empty"):
        decode_image(b"", "k")


# ---------------------------------------------------------------------------------------- encoding


@pytest.mark.parametrize(
    "bad, exc, text",
    [
        (np.zeros((4, 5, 3), np.float32), TypeError, "float32"),
        (np.zeros((4, 5, 3), np.uint16), TypeError, "uint16"),
        (np.zeros((4, 5, 3), bool), TypeError, "bool"),
        (np.zeros((4, 5, 4), np.uint8), ValueError, "(4, 5, 4)"),
        (np.zeros((4, 5, 1), np.uint8), ValueError, "(4, 5, 1)"),
        (np.zeros((20,), np.uint8), ValueError, "(20,)"),
        (np.zeros((0, 5, 3), np.uint8), ValueError, "(0, 5, 3)"),
        ([[1, 2], [3, 4]], TypeError, "list"),
    ],
)
def test_encode_rejects_bad_arrays(tmp_path, bad, exc, text):
    with pytest.raises(exc) as ei:
        encode_image(bad, ".png")
    assert text in str(ei.value)
    with pytest.raises(exc):
        write_image(tmp_path / "bad.png", bad)
    assert not list(tmp_path.iterdir())


def test_encode_rejects_bad_options(small):
    for kw in ({"png_level": 10}, {"png_level": -1}, {"png_level": 1.5}, {"jpeg_quality": 0},
               {"jpeg_quality": 101}, {"jpeg_quality": True}):
        with pytest.raises(ValueError):
            encode_image(small, ".png", **kw)


def test_encode_unknown_extension(tmp_path, small):
    with pytest.raises(ImageError, match="gif"):
        encode_image(small, ".gif")
    with pytest.raises(ImageError) as ei:
        write_image(tmp_path / "x.gif", small)
    assert_image_error(ei, tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()


def test_encode_ext_forms(small):
    assert encode_image(small, "png") == encode_image(small, ".PNG")
    assert encode_image(small, "jpeg")[:3] == b"\xff\xd8\xff"
    assert encode_image(small, ".bmp")[:2] == b"BM"
    assert encode_image(small, ".tiff")[:4] in (b"II*\x00", b"MM\x00*")


# ---------------------------------------------------------------------------------------- atomic writes


def test_write_creates_parents_and_leaves_no_temp(tmp_path, small):
    path = tmp_path / "a" / "b" / "0001.png"
    write_image(path, small)
    assert sorted(p.name for p in path.parent.iterdir()) == ["0001.png"]
    write_image(path, small[::-1])  # overwrite
    assert sorted(p.name for p in path.parent.iterdir()) == ["0001.png"]
    np.testing.assert_array_equal(read_image(path), small[::-1])


def test_write_permissions_follow_umask(tmp_path, small):
    ref = tmp_path / "ref.txt"
    ref.write_text("x")  # created the ordinary way: 0o666 & ~umask
    path = tmp_path / "img.png"
    write_image(path, small)
    assert (path.stat().st_mode & 0o777) == (ref.stat().st_mode & 0o777)


def test_failed_encode_keeps_old_file(tmp_path, small, monkeypatch):
    path = tmp_path / "keep.png"
    write_image(path, small)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(images.cv2, "imencode", boom)
    monkeypatch.setattr(images.png, "encode_fast", boom)
    with pytest.raises(RuntimeError):
        write_image(path, small[::-1])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_failure_while_writing_keeps_old_file(tmp_path, small, monkeypatch, where):
    path = tmp_path / "keep.png"
    write_image(path, small)
    before = path.read_bytes()
    seen = []

    def fail(*args, **kwargs):
        seen.append(args)
        if where == "replace":
            # The complete temporary file exists at this point, under another name.
            assert Path(args[0]).name.startswith(".keep.png.") and Path(args[0]).name.endswith(".tmp")
            raise KeyboardInterrupt  # even a non-Exception interruption cleans up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(images.os, where, fail)
    expected = KeyboardInterrupt if where == "replace" else ImageError
    with pytest.raises(expected) as ei:
        write_image(path, small[::-1])
    if expected is ImageError:
        assert_image_error(ei, path)
        assert "No space left" in str(ei.value)
    assert seen
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_durable_false_skips_fsync(tmp_path, small, monkeypatch):
    calls = []
    monkeypatch.setattr(images.os, "fsync", lambda fd: calls.append(fd))
    write_image(tmp_path / "a.png", small, durable=False)
    assert calls == []
    write_image(tmp_path / "b.png", small)
    assert len(calls) == 1


def test_unwritable_destination(tmp_path, small):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ImageError) as ei:
        write_image(blocker / "sub" / "a.png", small)
    assert_image_error(ei, blocker / "sub" / "a.png")


_WRITER = """
import sys, numpy as np
from srprep.io.images import write_image
img = np.random.default_rng(0).integers(0, 256, (2000, 2000, 3), dtype=np.uint8)
print("ready", flush=True)
i = 0
while True:
    img[0, 0, 0] = i % 256
    write_image(sys.argv[1], img, durable=False)  # BMP: writing the 12 MB is most of each iteration
    i += 1
"""


@pytest.mark.slow
def test_killed_writer_never_leaves_partial_file(tmp_path):
    path = tmp_path / "out.bmp"
    repo = Path(__file__).resolve().parents[2]
    for delay in (0.02, 0.05, 0.08, 0.11, 0.14, 0.17, 0.2, 0.23):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, cwd=repo)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        if path.exists():
            assert read_image(path).shape == (2000, 2000, 3)  # complete, never truncated
        for p in tmp_path.iterdir():  # anything else is a hidden temporary file, not an image
            assert p == path or (p.name.startswith(".out.bmp.") and p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------- image_size


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif"])
def test_image_size_matches_decoded_shape(tmp_path, small, ext):
    path = tmp_path / f"s{ext}"
    write_image(path, small)
    assert image_size(path) == small.shape[:2] == read_image(path).shape[:2]
    assert all(type(v) is int for v in image_size(path))


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_image_size_reads_only_the_header(tmp_path, photo, ext, monkeypatch):
    data = encode_image(photo, ext)
    path = tmp_path / f"half{ext}"
    path.write_bytes(data[: len(data) // 3])  # pixels truncated, header intact
    with pytest.raises(ImageError):
        read_image(path)

    def no_decoding(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(images.cv2, "imdecode", no_decoding)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert image_size(path) == photo.shape[:2]


def test_image_size_errors(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        image_size(tmp_path / "missing.png")
    txt = tmp_path / "t.jpg"
    txt.write_text("hello")
    with pytest.raises(ImageError) as ei:
        image_size(txt)
    assert_image_error(ei, txt)
    head = tmp_path / "h.png"
    head.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ImageError) as ei:
        image_size(head)
    assert_image_error(ei, head)


# ---------------------------------------------------------------------------------------- .npy arrays


@pytest.mark.parametrize("shape", [(0,), (7,), (3, 4, 5), (2, 1, 1, 6)])
def test_array_round_trip(tmp_path, rng, shape):
    arr = rng.standard_normal(shape).astype(np.float32)
    path = tmp_path / "d" / "a.npy"
    write_array(path, arr)
    out = read_array(path)
    assert out.dtype == np.float32 and out.shape == shape
    np.testing.assert_array_equal(out, arr)
    assert [p.name for p in path.parent.iterdir()] == ["a.npy"]


def test_array_float16_round_trip(tmp_path, rng):
    arr = rng.random((6, 5, 3)).astype(np.float16)  # what srprep centroids --store-dtype float16 writes
    write_array(tmp_path / "h.npy", arr)
    out = read_array(tmp_path / "h.npy")
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, arr)


def test_array_special_values_and_fortran_order(tmp_path):
    arr = np.asfortranarray(np.array([[np.nan, np.inf], [-0.0, 1e-45]], np.float32))
    write_array(tmp_path / "f.npy", arr)
    out = read_array(tmp_path / "f.npy")
    np.testing.assert_array_equal(out, arr)
    assert np.signbit(out[1, 0])


def test_write_array_rejects_other_dtypes(tmp_path):
    for bad in (np.zeros(3, np.float64), np.zeros(3, np.uint8), [1.0, 2.0]):
        with pytest.raises(TypeError):
            write_array(tmp_path / "x.npy", bad)
    assert not list(tmp_path.iterdir())


def test_read_array_refuses_broken_files(tmp_path, rng):
    good = tmp_path / "good.npy"
    write_array(good, rng.standard_normal((64, 64)).astype(np.float32))
    data = good.read_bytes()
    cases = {
        "trunc.npy": data[: len(data) // 2],
        "trunc_header.npy": data[:20],
        "empty.npy": b"",
        "garbage.npy": b"\x00\x01\x02 not numpy at all" * 10,
        "text.npy": b"1.0 2.0 3.0\n",
    }
    for name, payload in cases.items():
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(ImageError) as ei:
            read_array(path)
        assert_image_error(ei, path)
    f64 = tmp_path / "f64.npy"
    np.save(f64, np.zeros(3))
    with pytest.raises(ImageError, match="float64"):
        read_array(f64)
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError) as ei:
        read_array(obj)
    assert_image_error(ei, obj)
    npz = tmp_path / "z.npy"
    with open(npz, "wb") as f:
        np.savez(f, a=np.zeros(2, np.float32))
    with pytest.raises(ImageError, match="not a .npy"):
        read_array(npz)
    with pytest.raises(ImageError, match="no such file"):
        read_array(tmp_path / "missing.npy")


def test_write_array_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.npy"
    write_array(path, np.ones(4, np.float32))
    monkeypatch.setattr(images.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(ImageError, match="I/O error"):
        write_array(path, np.zeros(4, np.float32))
    np.testing.assert_array_equal(read_array(path), np.ones(4, np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["w.npy"]


def test_no_global_state_changed_at_import():
    code = ("import cv2; n = cv2.getNumThreads(); from PIL import ImageFile; t = ImageFile.LOAD_TRUNCATED_IMAGES; "
            "import srprep.io.images; assert cv2.getNumThreads() == n; "
            "assert ImageFile.LOAD_TRUNCATED_IMAGES == t; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp", ".jpg"])
def test_is_grey_file_tells_one_channel_files_from_colour(tmp_path, small, ext):
    from srprep.io.images import is_grey_file

    write_image(tmp_path / f"grey{ext}", small[..., 1])
    write_image(tmp_path / f"flat{ext}", np.repeat(small[..., 1:2], 3, axis=2))  # colour file, equal channels
    assert is_grey_file(tmp_path / f"grey{ext}") and not is_grey_file(tmp_path / f"flat{ext}")
    with pytest.raises(ImageError, match="no such file"):
        is_grey_file(tmp_path / f"absent{ext}")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_ignored_by_default_and_applied_as_pillow_does_on_request(tmp_path, orientation):
    from PIL import Image, ImageOps

    from srprep.io.images import read_exif_orientation

    rng = np.random.default_rng(orientation)
    pixels = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)  # not square: rotations change the shape
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path, exif=exif.tobytes())
    assert read_exif_orientation(path) == orientation
    np.testing.assert_array_equal(read_image(path), pixels)
    with Image.open(path) as im:
        upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    np.testing.assert_array_equal(read_image(path, exif_orientation="apply"), upright)
