"""``srprep verify``: re-read everything srprep wrote under a folder and compare it with what was recorded.

The fast check every rerun makes (see :mod:`srprep.runner`) only looks at file sizes. This reads contents:

* every output file a step's journal lists is re-hashed and compared with the size and SHA-256 it was written
  with (links are not: their content is an input's, and they are counted as not checkable);
* every LMDB and HDF5 store a step wrote has its header checked and each value compared with the CRC-32 its
  done-record kept when it was committed.

A CRC-32 finds accidental damage (a bad disk, a truncated copy, a flipped bit), not deliberate tampering.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StoreError
from ..runner import find_step_outputs, territory_of, verify_files

__all__ = ["VerifyReport", "verify"]


@dataclass
class VerifyReport:
    """What :func:`verify` checked and what it found (one line per problem)."""

    root: Path
    outputs: int = 0
    files: int = 0
    unchecked: int = 0
    stores: int = 0
    values: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        found = f"{len(self.problems)} problem(s)" if self.problems else "no problems"
        skipped = f" ({self.unchecked} links or unhashed files not checkable)" if self.unchecked else ""
        return (f"verify: {self.outputs} step outputs, {self.files} files{skipped} and {self.stores} stores "
                f"({self.values} values) checked under {self.root}: {found}")


def verify(root: str | os.PathLike, *, max_depth: int = 4) -> VerifyReport:
    """Check every step output under ``root`` (see the module docstring).

    Raises:
        StoreError: no srprep output under ``root``.
    """
    root = Path(root)
    states = find_step_outputs(root, max_depth=max_depth)
    if not states:
        raise StoreError(f"{root}: no srprep step output found here (looked {max_depth} folders deep)")
    report = VerifyReport(root)
    seen: set[Path] = set()
    for state in states:
        report.outputs += 1
        checked, skipped, problems = verify_files(state)
        report.files += checked
        report.unchecked += skipped
        report.problems += problems
        for path in territory_of(state)[1]:  # the stores among them are checked
            if path in seen:
                continue
            seen.add(path)
            try:
                if (path / "data.mdb").is_file():
                    from ..io.lmdb_store import LmdbStore

                    store = LmdbStore(path, allow_incomplete=True)
                    try:
                        n, bad = store.verify()
                    finally:
                        store.close()
                elif path.is_file() and path.suffix.lower() in (".h5", ".hdf5"):
                    from ..io.hdf5_store import verify_file

                    n, bad = verify_file(path)
                else:
                    continue
            except StoreError as exc:  # damaged beyond reading: that is the finding
                report.stores += 1
                report.problems.append(str(exc))
                continue
            report.stores += 1
            report.values += n
            report.problems += bad
    return report
