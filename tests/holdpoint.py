"""Run a program (``-m MODULE`` or a script) that stops for good once a step has recorded N items.

    python tests/holdpoint.py STEP N MARKER -m srprep -q modcrop SRC DST -s 4 -j 1
    python tests/holdpoint.py STEP N MARKER job.py ARGS...

The runner calls its progress bar's ``update(1)`` right after an item is recorded (journal line or store
record). Here that call, for the step named STEP ("*": any step), counts; once N items are recorded the
program writes MARKER and sleeps until it is killed. A test waits for MARKER and kills the process: the
kill then lands after exactly N recorded items, however loaded the machine is. With ``-j 1`` no further item
is in flight; worker processes (``-j 2``) may still finish the items they hold.
"""
import runpy
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class _HeldBar:
    def __init__(self, bar, counts: bool, after: int, marker: Path):
        self._bar, self._counts, self._after, self._marker = bar, counts, after, marker
        self._n = 0

    def update(self, n=1):
        self._bar.update(n)
        if self._counts:
            self._n += n
            if self._n >= self._after:
                self._marker.write_text(str(self._n))
                while True:
                    time.sleep(60)

    def close(self):
        self._bar.close()


def main() -> None:
    step, after, marker, *target = sys.argv[1:]
    # the repository first (this folder holds packages named like standard ones, e.g. tests/io)
    sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
    import srprep.runner as runner

    progress = runner._progress

    def held(total, desc, unit, enabled):
        return _HeldBar(progress(total, desc, unit, enabled), step in ("*", desc), int(after), Path(marker))

    runner._progress = held
    if target[0] == "-m":
        sys.argv = [target[1], *target[2:]]
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(target)
        runpy.run_path(target[0], run_name="__main__")


if __name__ == "__main__":
    main()
