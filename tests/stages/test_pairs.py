"""srprep pairs check: on real photos with known injected damage (global shifts of 0.5-8 HR px, a moved block,
colour gains) the shift is found within 0.25 px and every damaged pair ranks below every clean one; the
report, ID list, histogram and contact sheet; cache; bad layouts named; the command line."""
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from srprep.cli import main
from srprep.errors import StoreError
from srprep.io.images import read_image, write_image
from srprep.ops.align import fourier_shift
from srprep.ops.imresize import imresize_matlab
from srprep.stages.pack import pack
from srprep.stages.pairs import (CSV_COLUMNS, Tolerances, dataset_layout, find_pair, histogram_image, measure_pair,
                                 pairs_check, score_pair)

REPO = Path(__file__).resolve().parents[2]
MARGIN = 12  # HR pixels around the pair's HR inside the photo, so moved content never comes from outside


def u8(a):
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def make_pair(photo, scale, *, shift=(0.0, 0.0), block=None, gain=None, size=480):
    """(HR, LR) from a real photo; clean = imresize_matlab(HR, 1/s).

    shift: the scene seen by the LR moved by (dy, dx) HR pixels (Fourier shift of the whole photo before
    downsampling: the LR shows the HR's content displaced by shift/s LR pixels). block: (y, x, side, dy, dx)
    in HR pixels: only that block moved (a moving object). gain: per-channel factors applied to the LR.
    """
    h = min(size, photo.shape[0] - 2 * MARGIN) // scale * scale
    w = min(size, photo.shape[1] - 2 * MARGIN) // scale * scale
    win = (slice(MARGIN, MARGIN + h), slice(MARGIN, MARGIN + w))
    hr = np.ascontiguousarray(photo[win])
    seen = u8(fourier_shift(photo, *shift))[win] if any(shift) else hr.copy()
    if block is not None:
        y, x, side, dy, dx = block
        seen[y:y + side, x:x + side] = u8(fourier_shift(photo, dy, dx))[win][y:y + side, x:x + side]
    lr = imresize_matlab(seen, 1 / scale)
    if gain is not None:
        lr = u8(lr * np.asarray(gain, dtype=np.float64))
    return hr, lr


@pytest.fixture(scope="module")
def photos(samples):
    return {p.stem: read_image(p) for p in sorted(samples.glob("*/*.png"))}


# ------------------------------------------------------------------------------------------ accuracy


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_global_shift_found_within_a_quarter_pixel(photos, scale):
    errors = []
    for name in ("kodim02", "kodim07", "baby", "butterfly"):
        for dy, dx in [(0.5, 0.0), (0.0, -0.5), (1.5, 2.5), (-8.0, 3.0), (5.5, -8.0)]:
            m = measure_pair(*make_pair(photos[name], scale, shift=(dy, dx)), scale)
            err_lr = max(abs(m["dy_lr"] - dy / scale), abs(m["dx_lr"] - dx / scale))
            errors.append(err_lr)
            assert m["shift_hr"] == pytest.approx(m["shift_lr"] * scale)
    # Within 0.25 HR pixel, i.e. 0.25/s LR pixel. Measured over all 13 sample photos and six shifts: at most
    # 0.043 / 0.049 / 0.057 LR px (0.09 / 0.15 / 0.23 HR px) at x2 / x3 / x4, median 0.02 LR px.
    assert max(errors) * scale <= 0.25, (max(errors), scale)


def test_clean_pairs_measure_as_clean(photos):
    for name in ("kodim01", "kodim04", "woman"):
        for scale in (2, 3, 4):
            m = measure_pair(*make_pair(photos[name], scale), scale)
            assert m["shift_lr"] < 0.01 and m["local_lr"] < 0.05 and m["colour"] < 0.002 and m["psnr"] > 50
            assert score_pair(m, Tolerances())[0] < 0.05


def test_a_moving_block_shows_as_local_misalignment(photos):
    hr, lr = make_pair(photos["kodim03"], 2, block=(160, 200, 128, 4.0, -3.0))
    m = measure_pair(hr, lr, 2)
    assert m["shift_lr"] < 0.1  # the rest of the frame still lines up
    assert m["local_lr"] == pytest.approx(2.5, abs=0.25)  # |(4, -3)| / 2 LR px on a tile inside the block
    assert 80 <= m["local_y"] <= 80 + 64 and 100 <= m["local_x"] <= 100 + 64  # LR block: rows 80-144, cols 100-164
    assert score_pair(m, Tolerances()) == (pytest.approx(m["local_lr"]), "local")


def test_colour_gains(photos):
    # Gains below 1: nothing clips at 255, so the measured gain is the applied one.
    m = measure_pair(*make_pair(photos["kodim06"], 3, gain=(0.92, 1.0, 0.97)), 3)
    assert m["gain_r"] == pytest.approx(0.92, abs=0.002) and m["gain_b"] == pytest.approx(0.97, abs=0.002)
    assert m["gain_g"] == pytest.approx(1.0, abs=0.002)
    assert m["colour"] == pytest.approx(0.08, abs=0.002) and m["diff_r"] < -5
    assert m["shift_lr"] < 0.02
    assert score_pair(m, Tolerances())[1] == "colour"


# ------------------------------------------------------------------------------------------ the step


DAMAGE = {
    "kodim01": {"shift": (0.5, 0.0)},         # half an HR pixel: 0.25 LR px at x2
    "kodim02": {"shift": (0.0, -1.5)},
    "kodim03": {"shift": (3.0, 2.0)},
    "kodim04": {"shift": (-8.0, 0.0)},
    "kodim05": {"block": (160, 160, 128, 4.0, -3.0)},
    "kodim06": {"block": (64, 256, 128, -2.0, -2.0)},
    "kodim07": {"gain": (1.06, 1.0, 1.0)},
    "kodim08": {"gain": (0.94, 0.94, 0.94)},  # exposure
    "baby": {"shift": (1.5, 1.5)},
    "bird": {"gain": (1.0, 1.0, 1.1)},
    "butterfly": {"shift": (0.0, 8.0)},
    "head": {"block": (96, 96, 96, 0.0, 6.0)},
    "woman": {"shift": (2.0, 0.5), "gain": (1.03, 1.0, 1.0)},
}


@pytest.fixture(scope="module")
def dataset(photos, tmp_path_factory):
    """AIM layout X2/HR, X2/LR: every sample photo once clean (keys 0000NN) and once damaged (keys 0001NN).

    Returns (root, {damaged key: photo name}).
    """
    root = tmp_path_factory.mktemp("pairs") / "X2"
    damaged = {}
    for i, (name, photo) in enumerate(sorted(photos.items())):
        for key, kw in ((f"{i:06d}", {}), (f"{100 + i:06d}", DAMAGE[name])):
            hr, lr = make_pair(photo, 2, **kw)
            write_image(root / f"HR/{key}.png", hr)
            write_image(root / f"LR/{key}.png", lr)
            if kw:
                damaged[key] = name
    return root, damaged


def test_every_damaged_pair_ranks_below_every_clean_one(dataset, tmp_path):
    root, damaged = dataset
    rep = pairs_check(root, 2, tmp_path / "work", ids_out=tmp_path / "clean.txt", hist=tmp_path / "hist.png",
                      sheet=tmp_path / "worst.png", jobs=1, progress=False)
    assert rep.step.processed == 26
    rows = rep.rows
    worst_first = [r["key"] for r in rows]
    assert set(worst_first[:len(damaged)]) == set(damaged), [(r["key"], round(r["score"], 3)) for r in rows]
    clean_max = max(r["score"] for r in rows if r["key"] not in damaged)
    damaged_min = min(r["score"] for r in rows if r["key"] in damaged)
    assert clean_max < 0.05 and damaged_min > 0.4  # the least: half an HR pixel, 0.25 LR px / 0.5 LR px
    # Known damage is recognised for what it is.
    by_name = {damaged[r["key"]]: r for r in rows if r["key"] in damaged}
    for name, kw in DAMAGE.items():
        expect = "shift" if "shift" in kw else "local" if "block" in kw else "colour"
        assert by_name[name]["reason"] == expect, name
        if "shift" in kw:  # within 0.25 HR px, and reported in LR and HR pixels
            assert by_name[name]["shift_hr"] == pytest.approx(np.hypot(*kw["shift"]), abs=0.25)
            assert by_name[name]["shift_lr"] == pytest.approx(np.hypot(*kw["shift"]) / 2, abs=0.125)
    # At the default tolerances everything but the half-pixel shift (0.25 LR px) is flagged.
    half = next(k for k, n in damaged.items() if n == "kodim01")
    assert {r["key"] for r in rep.flagged} == set(damaged) - {half}
    ids = (tmp_path / "clean.txt").read_text().splitlines()
    assert ids == sorted(f"{r['key']}.png" for r in rows if r["key"] not in damaged or r["key"] == half)
    with open(tmp_path / "work/report.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == CSV_COLUMNS and [t["key"] for t in table] == worst_first
    assert table[0]["rank"] == "1" and table[0]["hr"].endswith(f"HR/{table[0]['key']}.png")
    assert float(table[0]["shift_hr"]) == pytest.approx(2 * float(table[0]["shift_lr"]), rel=1e-5)
    hist, sheet = read_image(tmp_path / "hist.png"), read_image(tmp_path / "worst.png")
    assert hist.shape == (400, 720, 3) and len(np.unique(hist.reshape(-1, 3), axis=0)) > 3
    assert sheet.shape[0] > 8 * 96 and sheet.shape[1] > 2 * 192
    assert "26 pairs, 14 clean, 12 flagged (6 shift, 3 colour, 3 local)" in rep.summary()


def test_measurements_are_cached_and_tolerances_only_rewrite_the_report(dataset, tmp_path):
    root, damaged = dataset
    sub = tmp_path / "X2"
    for k in ("000000", "000108", "000102"):  # clean baby, kodim05 with a moved block, butterfly moved 8 px
        for f in ("HR", "LR"):
            (sub / f).mkdir(parents=True, exist_ok=True)
            (sub / f / f"{k}.png").write_bytes((root / f / f"{k}.png").read_bytes())
    first = pairs_check(sub, 2, tmp_path / "work", jobs=1, progress=False)
    again = pairs_check(sub, 2, tmp_path / "work", tolerances=Tolerances(max_local=10, max_shift=10),
                        jobs=1, progress=False)
    assert again.step.status == "up to date" and again.step.processed == 0
    assert len(first.flagged) == 2 and len(again.flagged) == 0
    assert [r["score"] for r in again.rows] != [r["score"] for r in first.rows]
    psnr = pairs_check(sub, 2, tmp_path / "work", tolerances=Tolerances(min_psnr=80), jobs=1, progress=False)
    assert all(r["reason"] == "psnr" and not r["clean"] for r in psnr.rows)


def test_packed_pairs_are_checked_through_the_store_interface(dataset, tmp_path):
    root, _ = dataset
    sub = tmp_path / "X2"
    for k in ("000003", "000103"):
        for f in ("HR", "LR"):
            (sub / f).mkdir(parents=True, exist_ok=True)
            (sub / f / f"{k}.png").write_bytes((root / f / f"{k}.png").read_bytes())
    pack(sub, tmp_path / "packed", fmt="lmdb", jobs=1, progress=False)
    folder = pairs_check(sub, 2, tmp_path / "w1", jobs=1, progress=False)
    packed = pairs_check(tmp_path / "packed", 2, tmp_path / "w2", ids_out=tmp_path / "ids.txt", jobs=1,
                         progress=False)
    assert [(r["key"], r["score"]) for r in packed.rows] == [(r["key"], r["score"]) for r in folder.rows]
    assert (tmp_path / "ids.txt").read_text() == "000003.png\n"


# ------------------------------------------------------------------------------------------ bad input


def test_bad_layouts_are_named(dataset, tmp_path):
    root, _ = dataset
    bad = tmp_path / "bad"
    for f in ("HR", "LR"):
        (bad / f).mkdir(parents=True)
        for k in ("000000", "000001", "000002"):
            (bad / f / f"{k}.png").write_bytes((root / f / f"{k}.png").read_bytes())
    (bad / "LR/000002.png").unlink()
    with pytest.raises(StoreError, match=r"HR/LR count mismatch: 3 images in .*bad/HR, 2 in .*bad/LR; no LR image "
                                         r"for .*bad/HR/000002.png"):
        pairs_check(bad, 2, tmp_path / "work", progress=False)
    write_image(bad / "LR/000002.png", np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(StoreError, match=r"bad/LR/000002.png is 10x10 but .*bad/HR/000002.png is \d+x\d+: at x2"):
        pairs_check(bad, 2, tmp_path / "work", progress=False)
    with pytest.raises(StoreError, match=r"3 problems:\n  .*bad/LR/000000.png is 240x240 but .*HR/000000.png is "
                                         r"480x480: at x3 the LR should be 160x160"):
        pairs_check(bad, 3, tmp_path / "work", progress=False)
    with pytest.raises(StoreError, match=r"bad/HR: holds image files \(000000.png ...\) itself; expected a dataset"):
        pairs_check(bad / "HR", 2, tmp_path / "work", progress=False)
    (bad / "LR").rename(bad / "X4")
    with pytest.raises(StoreError, match=r"no LR field for x2 \(looked for X2, x2, LR; it has HR, X4\)"):
        find_pair(bad, 2)
    with pytest.raises(StoreError, match="overlaps the source"):
        pairs_check(bad, 4, bad / "work", progress=False)
    assert [f.name for f in dataset_layout(bad)] == ["HR", "X4"]


def test_histogram_image_with_matplotlib_keeps_every_score_and_labels_the_threshold():
    pytest.importorskip("matplotlib")
    img = histogram_image([0.01] * 50 + [0.5, 3.0, 40.0], 1.0)
    assert img.shape == (400, 720, 3) and img.dtype == np.uint8
    green = (np.abs(img.astype(int) - [0, 158, 115]).sum(axis=2) < 30)
    red = (np.abs(img.astype(int) - [213, 94, 0]).sum(axis=2) < 30)
    assert green.sum() > 200 and red.sum() > 50
    spines = np.flatnonzero((img < 40).all(axis=2).sum(axis=0) > 150)  # axes edges, the threshold line
    left, right = spines.min(), spines.max()
    bars = np.flatnonzero(red[:, left:right].any(axis=0)) + left
    # the 40.0 outlier has its own bar at the right end of the axes (log scale), well right of the 3.0 one
    assert bars.max() > right - 20 and bars.max() - bars.min() > 100
    assert red[:, right + 1:].any() and green[:, right + 1:].any()  # legend swatches, off the bars
    assert len(spines) >= 3  # and the dashed threshold line between them


def test_histogram_image_without_matplotlib_draws_bars_and_threshold(monkeypatch):
    from srprep.ops import figures

    monkeypatch.setattr(figures, "available", lambda: False)
    img = histogram_image([0.01] * 50 + [0.5, 3.0, 40.0], 1.0)
    assert img.shape == (400, 720, 3) and img.dtype == np.uint8
    assert (img == [60, 170, 60]).all(axis=2).sum() > 100 and (img == [200, 60, 50]).all(axis=2).sum() > 10
    assert histogram_image([], 1.0).shape == (400, 720, 3)


# ------------------------------------------------------------------------------------------ command line


def test_cli(dataset, tmp_path, capsys, monkeypatch):
    root, damaged = dataset
    sub = tmp_path / "X2"
    for k in ("000001", "000002", "000101", "000107"):
        for f in ("HR", "LR"):
            (sub / f).mkdir(parents=True, exist_ok=True)
            (sub / f / f"{k}.png").write_bytes((root / f / f"{k}.png").read_bytes())
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the work folder goes beside the outputs asked for, not into the current one
    res = tmp_path / "results"
    assert main(["pairs", "check", sub, "--scale", "2", "--ids-out", res / "ids.txt", "--hist", res / "h.png",
                 "--sheet", res / "s.png", "--sheet-count", "2", "-j", "2"]) == 0
    out = capsys.readouterr().out
    assert "4 pairs, 2 clean, 2 flagged" in out and "4 measured, 0 reused" in out
    assert (res / "X2_pairs_x2/report.csv").is_file() and (res / "s.png").is_file()
    assert (res / "ids.txt").read_text() == "000001.png\n000002.png\n"
    assert not any(elsewhere.iterdir())
    assert main(["pairs", "check", sub, "--scale", "2", "-j", "1"]) == 0  # no output asked for: beside SRC
    assert (tmp_path / "X2_pairs_x2/report.csv").is_file()
    assert not any(elsewhere.iterdir())
    assert main(["pairs", "check", sub, "-s", "3"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "000001.png" in err
    proc = subprocess.run([sys.executable, "-m", "srprep", "pairs", "check", "--help"], capture_output=True,
                          text=True, cwd=REPO)
    assert "Example" in proc.stdout and "--threshold" in proc.stdout


# ------------------------------------------------------------------------------------------ the screen

SUBTLE = {  # damage at about one tolerance, over little of the image: what a screen could let through
    "kodim01": {"block": (200, 240, 32, 2.0, 0.0)},   # a 32-px object moved 1 LR px (the local tolerance)
    "kodim02": {"block": (96, 96, 48, 0.0, -1.5)},
    "kodim03": {"shift": (0.0, 0.5)},                 # a quarter LR pixel
    "kodim04": {"block": (300, 100, 40, 1.0, 1.0)},
    "baby": {"block": (240, 240, 64, -2.0, 2.0)},
    "butterfly": {"gain": (1.0, 0.99, 1.0)},
}


@pytest.fixture(scope="module")
def screen_cases(photos, shared_data):
    """(HR, LR, scale) by name: every bundled photo clean and with its DAMAGE at x2, the SUBTLE damage at x2,
    a few clean and damaged pairs at x3 and x4, and the four real camera pairs (their registered LR brought
    to the x2 grid: real misalignment, blur and colour), centre crops of 800x800 HR px."""
    cases = {}
    for name, photo in photos.items():
        cases[f"clean {name} x2"] = (*make_pair(photo, 2), 2)
        cases[f"damaged {name} x2"] = (*make_pair(photo, 2, **DAMAGE[name]), 2)
    for name, kw in SUBTLE.items():
        cases[f"subtle {name} x2"] = (*make_pair(photos[name], 2, **kw), 2)
    for s in (3, 4):
        for name in ("kodim05", "head"):
            cases[f"clean {name} x{s}"] = (*make_pair(photos[name], s), s)
            cases[f"damaged {name} x{s}"] = (*make_pair(photos[name], s, **DAMAGE[name]), s)
    for gt in sorted((shared_data / "realsr/ValidationGT").glob("*.png")):
        hr, lr = read_image(gt), read_image(gt.parent.parent / "ValidationLR" / gt.name)
        y, x = (hr.shape[0] - 800) // 2, (hr.shape[1] - 800) // 2
        win = (slice(y, y + 800), slice(x, x + 800))
        cases[f"real {gt.stem} x2"] = (hr[win], imresize_matlab(lr[win], 1 / 2), 2)
    return cases


def test_the_screen_keeps_every_verdict_and_the_ranking_of_measuring_every_tile(screen_cases):
    """The screen (default) against --all-tiles on the same pairs: a pair the screen does not settle gets the
    very same measurements; a pair it settles differs only in its local measures, which stay below the
    screen's own limit, and scores the same unless both scores are below that limit. So at any threshold above
    that limit the clean/flagged split and the worst-first order are those of measuring every tile."""
    from srprep.stages.pairs import SCREEN_SHIFT, MeasureOptions

    tol = Tolerances()
    limit = SCREEN_SHIFT / tol.max_local
    quick, full = {}, {}
    for key, (hr, lr, s) in screen_cases.items():
        quick[key] = measure_pair(hr, lr, s)
        full[key] = measure_pair(hr, lr, s, MeasureOptions(screen=False))
    local = {"local_lr", "local_p90_lr", "local_hr", "local_tiles", "local_y", "local_x"}
    settled = [k for k in quick if quick[k]["local_tiles"] < full[k]["local_tiles"]]
    for key in quick:
        if key in settled:
            assert {f: v for f, v in quick[key].items() if f not in local} == \
                   {f: v for f, v in full[key].items() if f not in local}, key
            assert quick[key]["local_lr"] <= full[key]["local_lr"] < limit, key
        else:
            assert quick[key] == full[key], key
    # The screen does its job: every clean pair is settled where its first quarter of the tiles is fewer than
    # all (all but head at x3 and x4: 85 and 64 LR px, 4 tiles and 1); no pair with moved content (a shift, a
    # block) and no real pair is (a colour change alone may be: the colour measure is never screened).
    kinds = {**{f"damaged {n}": set(kw) for n, kw in DAMAGE.items()},
             **{f"subtle {n}": set(kw) for n, kw in SUBTLE.items()}}
    moved = {k for k in quick if kinds.get(k.rsplit(" ", 1)[0], set()) & {"shift", "block"} or k.startswith("real")}
    assert {k for k in quick if k.startswith("clean")} - set(settled) == {"clean head x3", "clean head x4"}
    assert not moved & set(settled) and len(moved) == 23, sorted(moved & set(settled))
    score_q = {k: score_pair(m, tol)[0] for k, m in quick.items()}
    score_f = {k: score_pair(m, tol)[0] for k, m in full.items()}
    for threshold in (limit, 0.25, 0.5, 1.0, 2.0, 4.0):
        assert {k for k in score_q if score_q[k] > threshold} == {k for k in score_f if score_f[k] > threshold}
    above = [k for k in score_f if score_f[k] >= limit]
    assert sorted(above, key=score_q.get) == sorted(above, key=score_f.get)
    assert not any(k.startswith("clean") for k in above)
    for k in settled:  # a settled pair's score is its full one, or both are below the limit
        assert score_q[k] == score_f[k] or max(score_q[k], score_f[k]) < limit, k
