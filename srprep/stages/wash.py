"""``srprep wash``: keep (or drop) the pairs named in an ID list, without touching the source.

The AIM2020 Real-SR x2/x3/x4 training sets have 19,000 LR/HR pairs each; pairs with a camera shift, a moving
object or a colour mismatch were removed by hand into "clean ID" lists (``x2_clean_img_id.txt``: one
``000123.png`` per line, in no particular order). ``wash`` applies such a list to a dataset folder
(``SRC/HR``, ``SRC/LR`` or any other fields, see :func:`srprep.stages.pairs.dataset_layout`):

* a **folder** field is mirrored file by file: ``DST/<field>/<same file name>``, as a hard link (default:
  no extra space, and independent of SRC's path), a symbolic link (absolute target) or a copy;
* a **packed** field (LMDB, an HDF5 group, a view) is washed by writing a view, ``DST/<field>/view.json``
  naming the source store, its fingerprint and the kept keys (:mod:`srprep.io.view`); nothing is re-encoded,
  and ``open_store`` (hence ``srprep pack`` and the trainer) reads it like any store.

``mode="keep"`` keeps the listed pairs, ``mode="drop"`` keeps every pair except them. Pairs are matched by
key, so ``000123.png``, ``000123.jpg`` and ``000123`` in the list all name the HR ``000123.png`` and the LR
``000123x2.png`` of a DIV2K-like layout.

SRC is only read: files are linked or copied into DST through temporary names and renamed there, so an
existing DST file is replaced, never written through (a hard link to SRC's file is never opened for
writing), and nothing is created in SRC.

Hard links across file systems are impossible; ``wash`` checks this up front (one trial link per field)
and stops with an error that suggests ``--link copy`` or ``--link symlink``, rather than silently
falling back to copying (which could fill the disk with tens of gigabytes nobody asked for).
"""
from __future__ import annotations

import errno
import functools
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import SrprepError, StoreError
from ..fingerprint import fingerprint
from ..io import images
from ..io.keys import check_key
from ..io.stores import ARRAY_EXTENSION, store_location
from ..io.view import VIEW_FILE, ViewSource, make_view_document, save_view_document
from ..runner import Item, ItemResult, Step, StepReport, run_step
from .pairs import check_output_dir, dataset_layout, pair_problems

__all__ = ["IdListError", "IdList", "read_id_list", "LINK_KINDS", "MODES", "WashReport", "link_file", "link_or_copy",
           "wash"]

LINK_KINDS = ("hardlink", "symlink", "copy")
MODES = ("keep", "drop")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_STRIP_EXTENSIONS = (*images.IMAGE_EXTENSIONS, ARRAY_EXTENSION)


class IdListError(SrprepError, ValueError):
    """An ID list that cannot be used as it is (bad lines, not UTF-8, no IDs); names the file and lines."""


@dataclass(frozen=True)
class IdList:
    """A parsed ID list.

    path: the file. keys: unique keys in file order (extension stripped). duplicates: key -> line numbers
    where it appears (only keys listed more than once). lines: key -> first line number.
    """

    path: Path
    keys: list[str]
    duplicates: dict[str, list[int]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


def _id_problem(text: str) -> str | None:
    if _CONTROL.search(text):
        return "contains a control character"
    if "/" in text or "\\" in text:
        return "contains a path separator (an ID is a file name, not a path)"
    if ".." in text:
        return "contains '..'"
    if any(c.isspace() for c in text):
        return "contains white space (one ID per line)"
    if text.startswith("."):
        return "starts with '.'"
    return None


def read_id_list(path: str | os.PathLike) -> IdList:
    """Parse an ID list: one file name or key per line (``000123.png`` or ``000123``), any order.

    Blank lines and lines starting with ``#`` are skipped; surrounding white space, Windows line ends and a
    UTF-8 byte-order mark are tolerated. An image extension (``.png``, ``.jpg`` ...) or ``.npy`` is
    stripped, so the key is the file's stem. Refused, with the line number: a path separator, ``..``, a
    control character, white space inside an ID, a leading ``.``. Duplicates are kept once and reported.

    Raises:
        IdListError: unreadable or not UTF-8, bad lines (up to 10 listed), or no IDs at all.

    Example:
        >>> read_id_list("x2_clean_img_id.txt").keys[:2]
        ['000090', '000091']
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IdListError(f"{path}: cannot read the ID list ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise IdListError(f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x})") from None
    keys: list[str] = []
    first: dict[str, int] = {}
    dups: dict[str, list[int]] = {}
    bad: list[str] = []
    for n, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        why = _id_problem(s)
        if why is None:
            stem, ext = os.path.splitext(s)
            key = stem if ext.lower() in _STRIP_EXTENSIONS and stem else s
            try:
                check_key(key)
            except StoreError as exc:
                why = str(exc)
        if why is not None:
            bad.append(f"{path}:{n}: {s[:60]!r} {why}")
            continue
        if key in first:
            dups.setdefault(key, [first[key]]).append(n)
            continue
        first[key] = n
        keys.append(key)
    if bad:
        more = f"\n  ... and {len(bad) - 10} more bad lines" if len(bad) > 10 else ""
        raise IdListError(f"{len(bad)} bad line(s) in the ID list:\n  " + "\n  ".join(bad[:10]) + more
                          if len(bad) > 1 else bad[0])
    if not keys:
        raise IdListError(f"{path}: no IDs in the list (only blank lines or comments)")
    return IdList(path, keys, dups, first)


# ------------------------------------------------------------------------------------------ linking


def link_file(src: str | os.PathLike, dst: str | os.PathLike, kind: str) -> None:
    """Make ``dst`` hold ``src``'s bytes: a hard link, a symbolic link (absolute target) or a copy.

    Created under a temporary name beside ``dst`` and renamed over it, so an existing ``dst`` (which may
    itself be a hard link to some source file) is replaced, never written through.

    Raises:
        OSError: from the file system (e.g. ``EXDEV`` for a hard link across file systems).
    """
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    if tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    try:
        if kind == "hardlink":
            os.link(src, tmp)
        elif kind == "symlink":
            os.symlink(os.path.abspath(src), tmp)
        elif kind == "copy":
            shutil.copy2(src, tmp)  # keeps the mtime, so a copied set fingerprints like its source
        else:
            raise ValueError(f"link kind must be one of {', '.join(LINK_KINDS)}, not {kind!r}")
        os.replace(tmp, dst)
    except BaseException:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        raise


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """``dst`` holds ``src``'s bytes: a hard link, or a copy where no link can be made (another file system,
    or a file system without links). For steps whose output may simply be the source file."""
    try:
        link_file(src, dst, "hardlink")
    except OSError:
        link_file(src, dst, "copy")


def probe_link(src_file: Path, dst_dir: Path, kind: str) -> None:
    """Try one link from ``src_file`` into ``dst_dir`` (then remove it): fail early with a useful message."""
    if kind == "copy":
        return
    created = []  # folders this probe made, removed again when it fails (DST stays as it was)
    d = Path(dst_dir)
    while not d.exists():
        created.append(d)
        d = d.parent
    dst_dir.mkdir(parents=True, exist_ok=True)
    probe = dst_dir / f".srprep-link-probe-{os.getpid()}"
    try:
        link_file(src_file, probe, kind)
    except OSError as exc:
        for folder in created:
            folder.rmdir()
        if exc.errno == errno.EXDEV:
            raise StoreError(f"cannot hard-link {src_file} into {dst_dir}: they are on different file systems; "
                             f"use --link copy (uses space) or --link symlink") from None
        raise StoreError(f"cannot {kind} {src_file} into {dst_dir} ({exc.strerror or exc}); use --link copy"
                         + ("" if kind == "symlink" else " or --link symlink")) from None
    finally:
        if probe.exists() or probe.is_symlink():
            probe.unlink()


def _wash_item(payload: tuple, *, out: str, kind: str) -> ItemResult:
    """One item of the wash step: ``("link", [(source file, path in DST), ...])`` or ``("view", field, doc)``."""
    if payload[0] == "view":
        _, name, doc = payload
        save_view_document(Path(out) / name, doc)
        return ItemResult(outputs=[f"{name}/{VIEW_FILE}"])
    links: Sequence[tuple[str, str]] = payload[1]
    for src, rel in links:
        link_file(src, Path(out) / rel, kind)
    return ItemResult(outputs=[rel for _, rel in links])


# ------------------------------------------------------------------------------------------ the step


@dataclass
class WashReport:
    """What :func:`wash` did (or would do).

    kept / dropped: keys in DST / keys of SRC left out. missing: listed keys SRC does not have (in list
    order). duplicates: key -> line numbers. fields: field name -> "files" or "view".
    """

    step: StepReport
    mode: str
    ids: IdList
    kept: list[str]
    dropped: list[str]
    missing: list[str]
    fields: dict[str, str]

    def summary(self) -> str:
        head = "would keep" if self.step.status == "dry run" else "kept"
        line = (f"wash ({self.mode} {self.ids.path.name}): {head} {len(self.kept)}, dropped {len(self.dropped)}, "
                f"missing {len(self.missing)} of {len(self.ids.keys)} listed IDs"
                f"{f', {len(self.ids.duplicates)} duplicated' if self.ids.duplicates else ''}; fields "
                + ", ".join(f"{k} ({v})" for k, v in self.fields.items()) + f" -> {self.step.output}")
        if self.missing:
            line += f"\n  missing: {', '.join(self.missing[:10])}{' ...' if len(self.missing) > 10 else ''}"
        if self.ids.duplicates:
            d = list(self.ids.duplicates.items())[:5]
            line += "\n  duplicated: " + ", ".join(f"{k} (lines {', '.join(map(str, v))})" for k, v in d)
        line += "\n  " + self.step.summary()
        return line


def wash(src: str | os.PathLike, dst: str | os.PathLike, ids: str | os.PathLike | IdList, *, mode: str = "keep",
         link: str = "hardlink", allow_missing: bool = False, jobs: int | None = 1, force: bool = False,
         dry_run: bool = False, progress: bool = True) -> WashReport:
    """Write a washed copy of the dataset ``src`` to ``dst`` (links or views; ``src`` is only read).

    Args:
        src: dataset folder (``SRC/HR``, ``SRC/LR``... folders, LMDB stores, HDF5 files or views; every field
            must hold the same keys).
        dst: output folder, outside ``src``; mirrors ``src``'s fields (see the module docstring). Owned by the
            step: its cache state lives in ``dst/.srprep``; pairs that leave the list on a later run are
            removed from it.
        ids: the ID list (a path, or an :class:`IdList`).
        mode: "keep" the listed pairs, or "drop" them and keep the rest.
        link: "hardlink", "symlink" or "copy" (folder fields only; packed fields always get a view).
        allow_missing: listed IDs absent from ``src`` are reported, not an error.
        jobs, force, dry_run, progress: see :func:`srprep.runner.run_step` (linking is I/O-bound: one job is
            usually fastest).

    Returns:
        :class:`WashReport`.

    Raises:
        IdListError: a bad ID list (names the lines).
        StoreError: fields that do not pair up, listed IDs missing from ``src`` (unless ``allow_missing``),
            ``dst`` overlapping ``src``, a hard link across file systems.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if link not in LINK_KINDS:
        raise ValueError(f"link must be one of {', '.join(LINK_KINDS)}, not {link!r}")
    idl = ids if isinstance(ids, IdList) else read_id_list(ids)
    dst = check_output_dir(dst, src)
    fields = dataset_layout(src)
    ref = fields[0]
    for f in fields[1:]:
        _, problems = pair_problems(ref, f, None)  # keys only: sizes differ between fields by design
        if problems:
            raise StoreError(f"{src}: {problems[0]}")
    src_keys = ref.store.keys()
    have = set(src_keys)
    listed = set(idl.keys)
    missing = [k for k in idl.keys if k not in have]
    if missing and not allow_missing:
        where = ", ".join(f"{k} (line {idl.lines[k]})" for k in missing[:5])
        raise StoreError(f"{idl.path}: {len(missing)} listed ID(s) are not in {src}: {where}"
                         f"{' ...' if len(missing) > 5 else ''}; pass --allow-missing to skip them")
    if mode == "keep":
        kept = [k for k in src_keys if k in listed]
    else:
        kept = [k for k in src_keys if k not in listed]
    kept_set = set(kept)
    dropped = [k for k in src_keys if k not in kept_set]

    folder_fields = [f for f in fields if f.is_folder]
    packed_fields = [f for f in fields if not f.is_folder]
    items = []
    for k in kept:
        links = [(os.path.abspath(f.store.path(k)), f"{f.name}/{f.store.path(k).name}") for f in folder_fields]
        if links:
            items.append(Item(k, fingerprint([f.store.item_fingerprint(k) for f in folder_fields]), ("link", links)))
    for f in packed_fields:
        doc = make_view_document(dst / f.name, [ViewSource(f.path, f.store, kept, options=f.options)],
                                 made_by=f"srprep wash --mode {mode} --ids {idl.path.name}")
        # The view is one item of the step: written through the runner, so its removal or rewrite follows
        # the same cache rules as the linked files.
        items.append(Item(f"{f.name}~view", fingerprint(doc), ("view", f.name, doc)))
    step = Step("wash", dst, {"link": link, "fields": [f.name for f in fields]},
                {f.name: f.store.fingerprint() for f in fields},
                reads=tuple(p for f in fields if (p := store_location(f.store)) is not None))

    if not dry_run and kept:
        for f in folder_fields:
            probe_link(f.store.path(kept[0]), dst / f.name, link)
    # Absolute paths: a worker process of a reused pool may run in another working directory.
    worker = functools.partial(_wash_item, out=os.path.abspath(dst), kind=link)
    rep = run_step(step, items, worker, jobs=jobs, force=force, dry_run=dry_run, progress=progress, unit="pair")
    if not dry_run:
        for f in folder_fields:
            (dst / f.name).mkdir(parents=True, exist_ok=True)  # an empty wash still mirrors the layout
    return WashReport(rep, mode, idl, kept, dropped, missing,
                      {f.name: ("files" if f.is_folder else "view") for f in fields})

