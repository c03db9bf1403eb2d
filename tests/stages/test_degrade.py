"""``srprep degrade``: layout, seeds, parameter records that regenerate the bytes, cache, resume, CLI, errors."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srprep.cli import main
from srprep.errors import StageError
from srprep.io.images import read_image, write_image
from srprep.ops.degrade import DegradationConfig
from srprep.ops.degrade.recipes import RECIPE_NAMES, apply_reflash
from srprep.ops.grid import modcrop
from srprep.stages.degrade import (DegradeOptions, RecipeError, degrade, load_config, regenerate,
                                   regenerate_from_record, resolve_recipe, sharpen_gt)

REPO = Path(__file__).resolve().parents[2]
NOISY = [n for n in RECIPE_NAMES if "noise" in n]


def make_hr(samples, root: Path) -> Path:
    """Three small real crops; baby is 66x70 so that the x4 modcrop has something to cut."""
    src = root / "hr"
    write_image(src / "baby.png", read_image(samples / "set5/baby.png")[100:166, 120:190])
    write_image(src / "butterfly.png", read_image(samples / "set5/butterfly.png")[:64, :64])
    write_image(src / "kodim03.png", read_image(samples / "kodak/kodim03.png")[100:180, 100:164])
    return src


def files(root: Path) -> dict[str, bytes]:
    """Every output file (not the cache state) by relative path, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".srprep" not in p.parts}


def run(src, dst, recipe="reflash", **kw):
    opts = DegradeOptions(**{k: kw.pop(k) for k in list(kw) if k in DegradeOptions.__dataclass_fields__})
    return degrade(src, dst, recipe, opts, progress=False, **{"jobs": 1, **kw})


@pytest.fixture(scope="module")
def hr_dir(samples, tmp_path_factory):
    return make_hr(samples, tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def reflash_out(hr_dir, tmp_path_factory):
    dst = tmp_path_factory.mktemp("reflash") / "out"
    run(hr_dir, dst, seed=3)
    return dst


@pytest.fixture(scope="module")
def real_out(hr_dir, tmp_path_factory):
    dst = tmp_path_factory.mktemp("real") / "out"
    run(hr_dir, dst, "realesrgan", copies=2, seed=3)
    return dst


# ----------------------------------------------------------------------------------------- reflash


def test_reflash_layout_and_hr_is_lr_times_scale(reflash_out, hr_dir):
    # the original's folder names (its "jepg" spelling), each LR named as its HR: what its test configs read
    assert sorted(p.name for p in reflash_out.iterdir() if not p.name.startswith(".")) == sorted(
        ["HR", "bicubic", "blur2_bicubic", "bicubic_noise20", "bicubic_jepg50", "blur2_bicubic_noise20",
         "blur2_bicubic_jepg50", "bicubic_noise20_jepg50", "blur2_bicubic_noise20_jepg50"])
    for key in ("baby", "butterfly", "kodim03"):
        hr = read_image(reflash_out / "HR" / f"{key}.png")
        np.testing.assert_array_equal(hr, modcrop(read_image(hr_dir / f"{key}.png"), 4))
        for name in RECIPE_NAMES:
            lr = read_image(reflash_out / name / f"{key}.png")
            assert (lr.shape[0] * 4, lr.shape[1] * 4) == hr.shape[:2]
            record = json.loads((reflash_out / name / f"{key}.json").read_text())
            assert record["recipe"] == "reflash" and record["set"] == name and record["hr"] == f"HR/{key}.png"
    assert read_image(reflash_out / "HR/baby.png").shape == (64, 68, 3)


def test_reflash_sets_equal_apply_reflash_called_directly(reflash_out, hr_dir):
    for key in ("baby", "kodim03"):
        hr = modcrop(read_image(hr_dir / f"{key}.png"), 4)
        for name in RECIPE_NAMES:
            expected, _ = apply_reflash(hr, name, scale=4, seed=3, key=key)
            np.testing.assert_array_equal(read_image(reflash_out / name / f"{key}.png"), expected, err_msg=name)


def test_reflash_matlab_and_round_options(hr_dir, reflash_out, tmp_path):
    dst = tmp_path / "out"
    run(hr_dir, dst, "bicubic_noise20", seed=3, resize="matlab", quantize="round", naming="div2k")
    assert sorted(p.name for p in dst.iterdir() if not p.name.startswith(".")) == ["HR", "bicubic_noise20"]
    hr = read_image(dst / "HR/butterfly.png")
    expected, _ = apply_reflash(hr, "bicubic_noise20", seed=3, key="butterfly", resize="matlab", quantize="round")
    out = read_image(dst / "bicubic_noise20/butterflyx4.png")  # naming="div2k": the x4 suffix
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out, read_image(reflash_out / "bicubic_noise20/butterfly.png"))
    assert regenerate(dst / "bicubic_noise20/butterflyx4.json").tobytes() == out.tobytes()


def test_one_set_by_either_spelling(hr_dir, reflash_out, tmp_path):
    run(hr_dir, tmp_path / "a", "bicubic_noise20_jpeg50", seed=3)
    assert sorted(p.name for p in (tmp_path / "a").iterdir() if not p.name.startswith(".")) == [
        "HR", "bicubic_noise20_jepg50"]
    assert files(tmp_path / "a") == {k: v for k, v in files(reflash_out).items()
                                     if k.startswith(("HR/", "bicubic_noise20_jepg50/"))}


# --------------------------------------------------------------------------------------- realesrgan


def test_realesrgan_layout_and_sharpened_hr(real_out, hr_dir):
    names = sorted(p.name for p in (real_out / "LR").iterdir() if not p.name.startswith("."))
    assert names == sorted(f"{k}_c{c}x4.{ext}" for k in ("baby", "butterfly", "kodim03") for c in (0, 1)
                           for ext in ("png", "json"))
    original = modcrop(read_image(hr_dir / "kodim03.png"), 4)
    hr = read_image(real_out / "HR/kodim03.png")
    np.testing.assert_array_equal(hr, sharpen_gt(original))  # x4plus: the GT is USM-sharpened
    assert not np.array_equal(hr, original)
    lr = read_image(real_out / "LR/kodim03_c0x4.png")
    assert (lr.shape[0] * 4, lr.shape[1] * 4) == hr.shape[:2]
    record = json.loads((real_out / "LR/kodim03_c0x4.json").read_text())
    assert record["rng_key"] == "kodim03/0" and record["hr_target"] == "sharpened"
    assert record["params"]["gt_usm"] is False  # sharpening happened once, into DST/HR
    # copies of one image draw differently
    assert not np.array_equal(lr, read_image(real_out / "LR/kodim03_c1x4.png"))
    resolved = load_config(real_out / "degradation.yaml")
    assert resolved == DegradationConfig()


def test_records_regenerate_the_exact_bytes(reflash_out, real_out):
    for root in (reflash_out, real_out):
        records = sorted(root.rglob("*.json"))
        records = [p for p in records if ".srprep" not in p.parts]
        assert len(records) in (24, 6)
        for rec in records:
            stored = read_image(rec.with_suffix(".png"))
            assert regenerate(rec).tobytes() == stored.tobytes(), rec


def test_a_record_with_another_noise_stream_is_refused(reflash_out, tmp_path):
    """Records of the float32 noise that srprep drew before cannot be regenerated by this version: say so."""
    record = json.loads((reflash_out / "bicubic_noise20/baby.json").read_text())
    record["noise_stream"] = "item_rng(seed, key).standard_normal((h, w, 3), float32)"
    hr = read_image(reflash_out / "HR/baby.png")
    with pytest.raises(ValueError, match="make the set again"):
        regenerate_from_record(record, hr)


def test_original_hr_option(hr_dir, real_out, tmp_path):
    dst = tmp_path / "out"
    run(hr_dir, dst, "realesrgan", copies=1, seed=3, hr="original")
    np.testing.assert_array_equal(read_image(dst / "HR/baby.png"), modcrop(read_image(hr_dir / "baby.png"), 4))
    record = json.loads((dst / "LR/baby_c0x4.json").read_text())
    assert record["hr_target"] == "original" and record["params"]["gt_usm"] is True
    lr = read_image(dst / "LR/baby_c0x4.png")
    assert regenerate(dst / "LR/baby_c0x4.json").tobytes() == lr.tobytes()
    # the same draws as the sharpened run: only where the sharpening happens differs
    sharpened = json.loads((real_out / "LR/baby_c0x4.json").read_text())["params"]
    assert {**sharpened, "gt_usm": True} == record["params"]


# ------------------------------------------------------------------------------------ seeds and jobs


@pytest.mark.parametrize("recipe", ["reflash", "realesrgan"])
def test_same_seed_is_byte_identical_across_runs_and_jobs(hr_dir, reflash_out, real_out, tmp_path, recipe):
    first = reflash_out if recipe == "reflash" else real_out
    copies = {} if recipe == "reflash" else {"copies": 2}
    run(hr_dir, tmp_path / "again", recipe, seed=3, **copies)
    run(hr_dir, tmp_path / "jobs2", recipe, seed=3, jobs=2, **copies)
    expected = files(first)
    assert files(tmp_path / "again") == expected
    assert files(tmp_path / "jobs2") == expected


def test_different_seeds_differ(hr_dir, reflash_out, real_out, tmp_path):
    run(hr_dir, tmp_path / "r", seed=4)
    run(hr_dir, tmp_path / "e", "realesrgan", copies=2, seed=4)
    for name in RECIPE_NAMES:
        same = (reflash_out / name / "baby.png").read_bytes() == (tmp_path / "r" / name / "baby.png").read_bytes()
        assert same == (name not in NOISY), name  # only the noisy sets depend on the seed
    for key in ("baby_c0", "kodim03_c1"):
        assert not np.array_equal(read_image(real_out / f"LR/{key}x4.png"),
                                  read_image(tmp_path / f"e/LR/{key}x4.png"))


# ------------------------------------------------------------------------------------------- cache


def test_second_run_is_up_to_date_and_a_new_seed_redoes_only_what_depends_on_it(hr_dir, tmp_path):
    dst = tmp_path / "out"
    rep = run(hr_dir, dst, seed=0)
    assert rep.written == 27 and rep.reused == 0
    rep = run(hr_dir, dst, seed=0)
    assert all(r.status == "up to date" for r in rep.steps) and rep.written == 0 and rep.reused == 27
    rep = run(hr_dir, dst, seed=1)
    by_name = {r.step.split(":")[1]: r for r in rep.steps}
    for name in RECIPE_NAMES:
        assert by_name[name].processed == (3 if name in NOISY else 0), name
    assert by_name["HR"].status == "up to date"
    assert "images written" in rep.summary()


def test_copies_add_and_remove_items_without_redoing_others(hr_dir, real_out, tmp_path):
    dst = tmp_path / "out"
    rep = run(hr_dir, dst, "realesrgan", copies=1, seed=3)
    assert rep.steps[1].processed == 3
    rep = run(hr_dir, dst, "realesrgan", copies=3, seed=3)
    assert (rep.steps[1].processed, rep.steps[1].reused) == (6, 3)
    assert (dst / "LR/baby_c1x4.png").read_bytes() == (real_out / "LR/baby_c1x4.png").read_bytes()
    rep = run(hr_dir, dst, "realesrgan", copies=2, seed=3, dry_run=True)
    assert rep.steps[1].removed == 3 and (dst / "LR/baby_c2x4.png").exists()
    rep = run(hr_dir, dst, "realesrgan", copies=2, seed=3)
    assert rep.steps[1].removed == 3 and not (dst / "LR/baby_c2x4.png").exists()
    assert not (dst / "LR/baby_c2x4.json").exists()
    rep = run(hr_dir, dst, "realesrgan", copies=2, seed=4)
    assert rep.steps[1].processed == 6


def test_a_failed_run_resumes_where_it_stopped(hr_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for p in sorted(hr_dir.iterdir()):
        (src / p.name).write_bytes(p.read_bytes())
    good = (src / "kodim03.png").read_bytes()
    (src / "kodim03.png").write_bytes(good[: len(good) // 2])  # truncated: the worker fails on it
    dst = tmp_path / "out"
    with pytest.raises(StageError, match=r"kodim03\.png"):
        run(src, dst, "realesrgan", copies=2)
    assert not (dst / "HR/.srprep/manifest.json").exists()
    (src / "kodim03.png").write_bytes(good)
    rep = run(src, dst, "realesrgan", copies=2)
    assert (rep.steps[0].processed, rep.steps[0].reused) == (1, 2)
    # the other images' copies were made with their HR, from the same decode, before kodim03 failed
    assert (rep.steps[1].processed, rep.steps[1].reused) == (2, 4)
    assert files(dst)["LR/kodim03_c1x4.png"] == files(tmp_path / "out")["LR/kodim03_c1x4.png"]


def test_killed_run_resumes_to_identical_outputs(hr_dir, tmp_path, kill_when):
    dst = tmp_path / "out"
    cmd = [sys.executable, "-m", "srprep", "-q", "degrade", hr_dir, dst, "--recipe", "realesrgan", "--copies", "40",
           "-j", "1"]
    kill_when(cmd, dst / "LR", "*.png", 10, step="degrade:LR", cwd=REPO)
    cmd = [str(c) for c in cmd]
    out = subprocess.run([*cmd[:3], *cmd[4:]], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    m = re.search(r"degrade:LR: 120 items, (\d+) processed, (\d+) reused", out.stdout)
    assert m, out.stdout
    processed, reused = map(int, m.groups())
    assert (processed, reused) == (110, 10)
    assert len(list((dst / "LR").glob("*.png"))) == 120
    for rec in sorted((dst / "LR").glob("*_c3?x4.json")):
        assert regenerate(rec).tobytes() == read_image(rec.with_suffix(".png")).tobytes()


# ------------------------------------------------------------------------------------- sheet + CLI


def test_cli_end_to_end_with_sheets(hr_dir, tmp_path, capsys):
    dst = tmp_path / "out"
    assert main(["degrade", hr_dir, dst, "--recipe", "reflash", "--seed", "3", "--sheet", "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "degrade:bicubic_noise20: 3 items, 3 processed, 0 reused" in out
    assert "degrade (reflash): 27 images written, 0 reused" in out
    # first image (baby, 64x68 after modcrop): 3 x 3 tiles of 64x68 under labels of 24 px lines (recipe names
    # wider than a tile wrap onto more lines), 4 px gaps
    sheet = read_image(dst / "sheet_reflash.png")
    assert sheet.shape[1:] == (3 * 68 + 4 * 4, 3) and (sheet.shape[0] - (3 * 64 + 4 * 4)) % 24 == 0
    mtime = (dst / "sheet_reflash.png").stat().st_mtime_ns
    assert main(["degrade", hr_dir, dst, "--seed", "3", "--sheet"]) == 0
    assert "0 images written, 27 reused" in capsys.readouterr().out
    assert (dst / "sheet_reflash.png").stat().st_mtime_ns == mtime

    dst = tmp_path / "real"
    assert main(["degrade", hr_dir, dst, "--recipe", "realesrgan", "-k", "2", "--sheet", "-j", "1"]) == 0
    assert "degrade:LR: 6 items, 6 processed" in capsys.readouterr().out
    sheet = read_image(dst / "sheet_realesrgan.png")
    assert sheet.shape[1:] == (3 * 68 + 4 * 4, 3)  # original + 2 copies in one row
    # above each copy what was drawn for it (its record): "copy K (key)" and a line per stage, wrapped
    strip = sheet.shape[0] - (64 + 2 * 4)
    assert strip % 24 == 0 and strip >= 4 * 24


def test_cli_yaml_recipe_and_scale_override(hr_dir, tmp_path, capsys):
    assert main(["degrade", hr_dir, tmp_path / "mild", "--recipe", REPO / "srprep/configs/degrade/mild.yaml",
                 "-j", "1"]) == 0
    assert read_image(tmp_path / "mild/LR/butterfly_c0x2.png").shape == (32, 32, 3)  # the file says scale 2
    # the shipped recipe by its name
    assert main(["degrade", hr_dir, tmp_path / "mild4", "--recipe", "mild", "--scale", "4", "-j", "1"]) == 0
    assert read_image(tmp_path / "mild4/LR/butterfly_c0x4.png").shape == (16, 16, 3)  # the flag wins
    # gt_usm: false -> DST/HR is the original
    np.testing.assert_array_equal(read_image(tmp_path / "mild4/HR/baby.png"),
                                  modcrop(read_image(hr_dir / "baby.png"), 4))


def test_cli_help_teaches_with_an_example(capsys):
    assert main(["degrade", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example" in out and "srprep degrade" in out and "--recipe" in out


def test_cli_dry_run_writes_nothing(hr_dir, tmp_path, capsys):
    assert main(["degrade", hr_dir, tmp_path / "out", "--dry-run", "--sheet"]) == 0
    assert "would process 3 of 3" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def _error(capsys, *args) -> tuple[int, str]:
    code = main(["degrade", *args])
    err = capsys.readouterr().err.strip()
    if code == 1:  # a user error: one line naming the file (exit 2 is Click's usage message)
        assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return code, err


def test_cli_errors_are_one_line(hr_dir, tmp_path, capsys):
    code, err = _error(capsys, hr_dir, tmp_path / "o", "--recipe", "bicubc")
    assert code == 1 and "unknown recipe 'bicubc'" in err and "realesrgan" in err
    code, err = _error(capsys, hr_dir, tmp_path / "o", "--recipe", tmp_path / "missing.yaml")
    assert code == 1 and "missing.yaml: no such recipe file" in err
    code, err = _error(capsys, hr_dir, tmp_path / "o", "--copies", "3")
    assert code == 2 and "--copies does not apply to the reflash recipe" in err
    code, err = _error(capsys, hr_dir, tmp_path / "o", "--recipe", "realesrgan", "--resize", "matlab")
    assert code == 2 and "--resize" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("noise_range: [1, 30\njpeg_range: [30, 95]\n")
    code, err = _error(capsys, hr_dir, tmp_path / "o", "--recipe", bad)
    assert code == 1 and "bad.yaml: not valid YAML at line" in err
    assert not (tmp_path / "o").exists()


def test_recipes_do_not_share_an_output_folder(hr_dir, reflash_out):
    with pytest.raises(RecipeError, match="already holds reflash output"):
        run(hr_dir, reflash_out, "realesrgan")


def test_image_too_small_names_the_file(tmp_path, capsys):
    write_image(tmp_path / "src/tiny.png", np.full((8, 9, 3), 100, np.uint8))
    code, err = _error(capsys, tmp_path / "src", tmp_path / "o", "-j", "1")
    assert code == 1 and "tiny.png: 8x9 image is too small for the scale 4 and the 21x21 blur" in err
    # without a blur, 8x8 is enough for x4
    assert main(["degrade", tmp_path / "src", tmp_path / "o2", "--recipe", "bicubic", "-j", "1"]) == 0


# ------------------------------------------------------------------------------------------ recipes


def test_yaml_configs(tmp_path):
    for path in sorted((REPO / "srprep/configs/degrade").glob("*.yaml")):
        load_config(path)  # the examples load strictly
    assert load_config(REPO / "srprep/configs/degrade/realesrgan_x4plus.yaml") == DegradationConfig()
    f = tmp_path / "c.yaml"
    f.write_text("noise_range: [1, 10]\nblur_kernel_size: 21\nnoise_rang2: [1, 5]\n")
    with pytest.raises(RecipeError, match=r"c\.yaml: unknown degradation options: blur_kernel_size, noise_rang2"):
        load_config(f)
    f.write_text("strict: false\nnoise_range: [1, 10]\nblur_kernel_size: 21\nscale: 2\n")
    cfg = load_config(f)
    assert cfg.noise_range == (1, 10) and cfg.scale == 2 and load_config(f, scale=3).scale == 3
    for text, what in [("noise_range: 5\n", "noise_range must be"), ("gt_usm: 1\n", "gt_usm must be true or false"),
                       ("sinc_prob: 1.5\n", "sinc_prob must be a probability"),
                       ("kernel_list: [iso, gauss]\nkernel_prob: [1, 1]\n", "kernel_list must be names"),
                       ("kernel_prob: [1, 2]\n", "kernel_prob must be 6"),
                       ("jpeg_range: [0, 95]\n", "jpeg_range must be"), ("- a\n- b\n", "expected a mapping"),
                       ("", "empty file"), ("strict: maybe\n", "strict must be"),
                       ("kernel_range: [7, 8]\n", "odd sizes")]:
        f.write_text(text)
        with pytest.raises(RecipeError, match=re.escape(what)):
            load_config(f)


def test_resolve_recipe():
    assert resolve_recipe("reflash") == ("reflash", RECIPE_NAMES)
    assert resolve_recipe("bicubic_jpeg50") == resolve_recipe("bicubic_jepg50") == ("reflash", ("bicubic_jepg50",))
    kind, cfg = resolve_recipe("realesrgan", scale=2)
    assert kind == "realesrgan" and cfg == DegradationConfig(scale=2)
    assert resolve_recipe(DegradationConfig(), scale=3)[1].scale == 3
    with pytest.raises(RecipeError, match="unknown recipe"):
        resolve_recipe("realesrgan_x4")


def test_reflash_decodes_each_image_once_and_links_an_hr_that_needs_no_crop(samples, tmp_path, monkeypatch):
    import os

    import srprep.stages.degrade as dg

    src = tmp_path / "src"
    src.mkdir()
    os.link(samples / "set5" / "baby.png", src / "baby.png")  # 512x512: a multiple of 4, linked as HR
    write_image(src / "woman.png", read_image(samples / "set5" / "woman.png")[:, :227])  # cropped: encoded
    seen = []
    real = dg.images.read_image
    monkeypatch.setattr(dg.images, "read_image", lambda p, **kw: seen.append(str(p)) or real(p, **kw))
    rep = run(src, tmp_path / "out", seed=1)
    assert [r.processed for r in rep.steps] == [2] * 9 and len(seen) == 2  # once per image for all 9 folders
    assert os.path.samefile(tmp_path / "out/HR/baby.png", src / "baby.png")
    assert np.array_equal(read_image(tmp_path / "out/HR/woman.png"), read_image(src / "woman.png")[:, :224])
    seen.clear()
    rep = run(src, tmp_path / "out", seed=2)  # only the noise sets depend on the seed
    assert [r.processed for r in rep.steps] == [0] + [2 if n in NOISY else 0 for n in RECIPE_NAMES]
    assert len(seen) == 2
