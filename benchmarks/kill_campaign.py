"""Kill campaign: every srprep writer step killed with SIGKILL, resumed, and compared with an uninterrupted run.

For each scenario (a command that writes: downsample, crop, pack into raw/PNG LMDB and HDF5, degrade, centroids
into folders and LMDB, train, and a ``srprep run`` pipeline), the campaign

1. runs the command once, uninterrupted, as the reference (counting its kill points and timing it);
2. per trial, runs it again in a fresh output and kills the whole process group (the run and its workers):

   * **random**: at a moment drawn uniformly between the output's first appearance and the reference's end;
     the first resume is killed again at a random moment in half of the trials;
   * **injected**: at kill point N (``benchmarks/_killhook``: before/after each rename, after each fsync,
     each journal line, each LMDB transaction and HDF5 flush), N drawn over all the reference's points;

3. resumes with the same command until it exits (a resume that fails is **unresumable**), then compares the
   output with the reference: every file byte for byte, every key and value of every LMDB database, every
   HDF5 dataset and attribute, for training every weight, optimiser and schedule value of every checkpoint
   (value by value: ``torch.save`` writes a random serialisation id into each file) and the CSV logs without
   their two wall-clock columns. Fingerprints of input file names, sizes and times kept in store metadata are
   left out (a pipeline's resumed run rewrites its intermediate files); the keys, values and CRC-32s they
   vouch for are compared. A reference file or key that is missing is **lost**; one that
   differs, or an extra one (a leftover temporary file), is **differing**. State folders (``.srprep``:
   journals with timestamps, locks) are not compared: they are how the resume works, not the output.

Run from the repository root (a few minutes per trial and scenario on a loaded 2-core machine):

    python benchmarks/kill_campaign.py --trials 3
    python benchmarks/kill_campaign.py --trials 1 --scenarios pack-lmdb-png,train --keep /tmp/kc

Prints one Markdown table row per scenario and a total, and exits 1 if anything was unresumable, lost or
differing.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOOK = Path(__file__).resolve().parent / "_killhook"
sys.path.insert(0, str(REPO))


@dataclass
class Scenario:
    name: str
    argv: list  # the srprep command line; "{out}" is the trial's output
    out: str = "out"  # what is compared, relative to the trial folder


@dataclass
class Tally:
    trials: int = 0
    landed: int = 0  # kills that hit a running process (the others came after it had finished)
    kills: int = 0
    unresumable: int = 0
    lost: int = 0
    differing: int = 0
    seconds: float = 0.0
    notes: list = field(default_factory=list)


def scenarios(base: Path) -> list[Scenario]:
    src, data, packed = base / "src", base / "data", base / "packed"
    imdn = REPO.parent / "shared" / "data" / "weights" / "IMDN_x2.pth"
    crop = ["--crop", "--size", "64", "--step", "32", "--commit-mib", "1", "-j", "2"]
    pipe = base / "pipeline.yaml"
    return [
        Scenario("downsample", ["downsample", src, "{out}", "--scale", "2", "--scale", "3", "-j", "2"]),
        Scenario("crop", ["crop", data / "HR", "--lr", data / "X2", "{out}", "--size", "64", "--step", "32",
                          "-j", "2"]),
        Scenario("pack-lmdb-raw", ["pack", data, "{out}", *crop]),
        Scenario("pack-lmdb-png", ["pack", data, "{out}", "--encoding", "png", *crop]),
        Scenario("pack-hdf5-raw", ["pack", data, "{out}", "--format", "hdf5", *crop]),
        Scenario("pack-hdf5-png", ["pack", data, "{out}", "--format", "hdf5", "--encoding", "png", *crop]),
        Scenario("degrade", ["degrade", src, "{out}", "--recipe", "reflash", "-j", "2"]),
        Scenario("centroids", ["centroids", data, "--model", imdn, "--out", "{out}", "-j", "2"]),
        Scenario("centroids-lmdb", ["centroids", packed, "--model", imdn, "--out", "{out}", "-j", "2"]),
        Scenario("train", ["train", "-c", REPO / "srprep/configs/tiny_cpu.yaml", f"data.root={data}", "train.iters=40",
                           "train.log_every=5", "train.ckpt_every=10", "train.keep_ckpts=10", "val.every=20",
                           "train.cpu_threads=1", "train.tensorboard=false", "--run-dir", "{out}",
                           "--resume", "auto"]),
        Scenario("run", ["run", pipe, "--workdir", "{out}"]),
    ]


# ------------------------------------------------------------------------------------------ running


def command(argv: list, out: Path) -> list[str]:
    return [sys.executable, "-m", "srprep", "-q", *(str(a).replace("{out}", str(out)) for a in argv)]


def env(kill_at: int = 0, count_file: Path | None = None) -> dict:
    e = {**os.environ, "PYTHONPATH": f"{HOOK}{os.pathsep}{REPO}", "SRPREP_KILL_PARENT": str(os.getpid()),
         "SRPREP_KILL_AT": str(kill_at)}
    if count_file is not None:
        e["SRPREP_KILL_COUNT"] = str(count_file)
    return e


def run(cmd: list[str], *, kill_at: int = 0, kill_after: float | None = None, watch: Path | None = None,
        count_file: Path | None = None, timeout: float = 1800) -> tuple[int, float, float | None, str]:
    """Run ``cmd`` in its own process group; SIGKILL the group ``kill_after`` seconds after ``watch`` appears.

    Returns (exit code, seconds, seconds until ``watch`` appeared or None, stderr)."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env(kill_at, count_file), stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True, text=True)
        appeared = None
        while proc.poll() is None:
            now = time.monotonic() - t0
            if appeared is None and watch is not None and watch.exists():
                appeared = now
            if kill_after is not None and appeared is not None and now >= appeared + kill_after:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            if now > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        code = proc.wait()
        err.seek(0)
        return code, time.monotonic() - t0, appeared, err.read()


# ------------------------------------------------------------------------------------------ comparing


# Fingerprints of the inputs' names, sizes and modification times: a pipeline's resumed run rewrites its
# intermediate files (new times), so these differ from the reference's by design; the content they vouch
# for (keys, values, CRC-32s) is compared.
_INPUT_STAT_FIELDS = ("fp", "source_fingerprint", "content_fp")


def _without_input_stats(raw: bytes) -> bytes:
    try:
        rec = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(rec, dict):
        return raw
    return json.dumps({k: v for k, v in rec.items() if k not in _INPUT_STAT_FIELDS}, sort_keys=True).encode()


def _lmdb_items(path: Path) -> dict:
    import lmdb

    env_ = lmdb.open(str(path), readonly=True, lock=False, max_dbs=8)
    try:
        items = {}
        with env_.begin() as txn:
            names = [bytes(k) for k, _ in txn.cursor()]
            # In the main database, a named database's record is its B-tree's root page and counts, which
            # differ with the history of writes; its contents are compared below instead.
            items[b""] = {bytes(k): bytes(v) for k, v in txn.cursor() if not bytes(k).startswith(b".")}
            for name in names:
                if name.startswith(b"."):
                    db = env_.open_db(name, txn=txn, create=False)
                    items[name] = {bytes(k): _without_input_stats(bytes(v)) if name in (b".done", b".meta")
                                   else bytes(v) for k, v in txn.cursor(db=db)}
        return items
    finally:
        env_.close()


def _hdf5_items(path: Path) -> dict:
    import h5py
    import numpy as np

    out = {}
    with h5py.File(path, "r") as f:
        out["/attrs"] = {k: str(v) for k, v in f.attrs.items() if k not in ("done_count", *_INPUT_STAT_FIELDS)}
        done = {}
        for raw in f[".srprep/done"][: int(f.attrs.get("done_count", 0))]:
            rec = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            done[rec["item"]] = _without_input_stats(json.dumps(rec).encode())
        out["/done"] = done

        def visit(name, obj):
            if name.startswith(".srprep"):
                return
            if isinstance(obj, h5py.Dataset):
                value = obj[()]
                if value.dtype == object:  # variable-length PNG bytes or strings
                    out[name] = [bytes(np.asarray(v).tobytes()) if not isinstance(v, (bytes, str)) else v
                                 for v in value]
                else:
                    out[name] = (value.shape, str(value.dtype), value.tobytes())
            out[name + "/attrs"] = {k: str(v) for k, v in obj.attrs.items()}

        f.visititems(visit)
    return out


def _same_values(a, b) -> bool:
    """Whether two loaded checkpoints hold the same values: every tensor equal, every other value equal."""
    import torch

    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_values(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same_values(x, y) for x, y in zip(a, b))
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    return a == b or (a != a and b != b)  # NaN (no validation yet) equals NaN


def _same_checkpoint(a: Path, b: Path) -> bool:
    import torch

    if a.read_bytes() == b.read_bytes():
        return True
    return _same_values(torch.load(a, map_location="cpu", weights_only=True),
                        torch.load(b, map_location="cpu", weights_only=True))


def _csv_without_times(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    header = lines[0].split(",") if lines else []
    cut = {header.index(c) for c in ("steps_per_s", "elapsed_s") if c in header}
    return [",".join(v for i, v in enumerate(line.split(",")) if i not in cut) for line in lines]


def _entries(root: Path) -> dict[str, Path]:
    """Relative path -> path of everything compared under ``root`` (LMDB folders and HDF5 files as wholes)."""
    found = {}
    if root.is_file():
        return {".": root}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = [n for n in dirnames if n not in (".srprep", ".srprep-pipeline", "tb")]
        if (d / "data.mdb").is_file():
            found[str(d.relative_to(root))] = d
            dirnames[:] = []
            for n in filenames:
                if n not in ("data.mdb", "lock.mdb"):
                    found[str((d / n).relative_to(root))] = d / n
            continue
        for n in filenames:
            found[str((d / n).relative_to(root))] = d / n
    return found


def compare(ref: Path, out: Path) -> tuple[int, int, list[str]]:
    """(lost, differing, notes): every reference entry missing from ``out``, and every one that differs."""
    a, b = _entries(ref), _entries(out)
    lost = [k for k in a if k not in b]
    differing = [f"extra {k}" for k in b if k not in a]
    for k in a:
        if k not in b:
            continue
        pa, pb = a[k], b[k]
        if pa.is_dir():  # an LMDB: every key and value of every database
            ia, ib = _lmdb_items(pa), _lmdb_items(pb)
            for db in ia:
                missing = set(ia[db]) - set(ib.get(db, {}))
                lost += [f"{k}[{db.decode()}]{m.decode(errors='replace')}" for m in sorted(missing)]
                differing += [f"{k}[{db.decode()}]{m.decode(errors='replace')}" for m in ia[db]
                              if m in ib.get(db, {}) and ia[db][m] != ib[db][m]]
                differing += [f"extra {k}[{db.decode()}]{m.decode(errors='replace')}"
                              for m in set(ib.get(db, {})) - set(ia[db])]
        elif pa.suffix == ".h5":
            ha, hb = _hdf5_items(pa), _hdf5_items(pb)
            lost += [f"{k}:{n}" for n in ha if n not in hb]
            differing += [f"{k}:{n}" for n in ha if n in hb and ha[n] != hb[n]]
        elif pa.name in ("train.csv", "val.csv"):
            if _csv_without_times(pa) != _csv_without_times(pb):
                differing.append(k)
        elif pa.suffix == ".pt":
            if not _same_checkpoint(pa, pb):
                differing.append(k)
        elif pa.read_bytes() != pb.read_bytes():
            differing.append(k)
    return len(lost), len(differing), [f"lost {x}" for x in lost[:3]] + differing[:3]


# ------------------------------------------------------------------------------------------ the campaign


def prepare(base: Path) -> None:
    """Eight Kodak crops (192x256), their x2 dataset, that dataset packed, and a two-step pipeline."""
    from srprep.io.images import read_image, write_image

    for p in sorted((REPO / "srprep/samples/kodak").glob("*.png")):
        write_image(base / "src" / p.name, read_image(p)[100:292, 200:456])
    for argv in (["downsample", base / "src", base / "data", "--scale", "2", "-j", "2"],
                 ["pack", base / "data", base / "packed", "-j", "2"]):
        subprocess.run([sys.executable, "-m", "srprep", "-q", *map(str, argv)], cwd=REPO, check=True)
    (base / "pipeline.yaml").write_text(json.dumps({
        "name": "kc", "steps": {
            "lr": {"command": "downsample", "args": [str(base / "src"), "{out}"],
                   "options": {"scale": [2, 4], "jobs": 2}},
            "pack": {"command": "pack", "args": ["{lr}", "{out}"],
                     "options": {"crop": True, "size": 64, "step": 32, "commit_mib": 1, "jobs": 2}}}}))


def campaign(sc: Scenario, work: Path, trials: int, rng: random.Random) -> Tally:
    tally = Tally()
    t_begin = time.monotonic()
    ref_dir = work / sc.name / "ref"
    ref_dir.mkdir(parents=True)
    count_file = work / sc.name / "count"
    code, seconds, appeared, err = run(command(sc.argv, ref_dir / "out"), watch=ref_dir / "out",
                                       count_file=count_file)
    if code != 0:
        raise SystemExit(f"{sc.name}: the reference run failed: {err.strip()[-500:]}")
    points = int(count_file.read_text())
    start = appeared or 0.0
    for t in range(trials):
        for mode in ("random", "injected"):
            trial = work / sc.name / f"{mode}{t}"
            trial.mkdir()
            cmd = command(sc.argv, trial / "out")
            if mode == "random":
                code, _, _, _ = run(cmd, watch=trial / "out", kill_after=rng.uniform(0, seconds - start))
            else:
                code, _, _, _ = run(cmd, kill_at=rng.randint(1, max(1, points)))
            tally.trials += 1
            tally.kills += 1
            tally.landed += code == -signal.SIGKILL
            if mode == "random" and rng.random() < 0.5:  # kill the first resume too
                code, _, _, _ = run(cmd, watch=trial / "out", kill_after=rng.uniform(0, seconds - start))
                tally.kills += 1
                tally.landed += code == -signal.SIGKILL
            code, _, _, err = run(cmd)
            if code != 0:
                tally.unresumable += 1
                tally.notes.append(f"{mode}{t}: resume exited {code}: {err.strip()[-300:]}")
                continue
            lost, differing, notes = compare(ref_dir / sc.out, trial / sc.out)
            tally.lost += lost
            tally.differing += differing
            tally.notes += [f"{mode}{t}: {n}" for n in notes]
            if not (lost or differing):
                shutil.rmtree(trial, ignore_errors=True)  # kept otherwise, to look at (with --keep)
    tally.seconds = time.monotonic() - t_begin
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2,
                        help="trials per scenario and kill mode (random, injected) [default: 2]")
    parser.add_argument("--scenarios", default="", help="comma-separated scenario names [default: all]")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments and points")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="srprep-kills-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    try:
        base = work / "base"
        if not (base / "pipeline.yaml").exists():
            prepare(base)
        chosen = [s for s in scenarios(base) if not args.scenarios or s.name in args.scenarios.split(",")]
        load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"]
        print(f"kill campaign: {args.trials} trial(s) per scenario and mode, seed {args.seed}, load {' '.join(load)}")
        print("| scenario | trials | kills (landed) | unresumable | lost | differing | minutes |")
        print("|---|---|---|---|---|---|---|")
        total = Tally()
        for sc in chosen:
            tl = campaign(sc, work, args.trials, rng)
            print(f"| {sc.name} | {tl.trials} | {tl.kills} ({tl.landed}) | {tl.unresumable} | {tl.lost} | "
                  f"{tl.differing} | {tl.seconds / 60:.1f} |", flush=True)
            for n in tl.notes[:5]:
                print(f"  {sc.name}: {n}", file=sys.stderr)
            for k in ("trials", "kills", "landed", "unresumable", "lost", "differing", "seconds"):
                setattr(total, k, getattr(total, k) + getattr(tl, k))
        print(f"| **total** | {total.trials} | {total.kills} ({total.landed}) | {total.unresumable} | {total.lost} | "
              f"{total.differing} | {total.seconds / 60:.1f} |")
        return 1 if total.unresumable or total.lost or total.differing else 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
