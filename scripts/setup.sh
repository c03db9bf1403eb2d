#!/usr/bin/env bash
# Set up srprep in a virtual environment on a Debian/Ubuntu machine.
#
#   bash scripts/setup.sh            srprep + the extras plots (matplotlib) and tensorboard
#   bash scripts/setup.sh --test     the same + test tools (pytest, hypothesis, scipy, dask),
#                                    and plain Pillow in <venv>/plain-pillow (outside the venv's PIL) for the
#                                    tests that check srprep's Pillow-exact resize against it
#
# The extras require plain "pillow" (directly, or through torchvision), which would replace pillow-simd: they
# are installed first and pillow-simd is put back last, then checked (PIL version, and each extra still works
# with it). A second run with nothing changed returns at once (see "up to date" below).
#
# Environment knobs:
#   SRPREP_VENV=path        where the venv lives (default: .venv in the repository)
#   SRPREP_PYTHON=python3   interpreter used to create it (Python >= 3.11)
#   SRPREP_EXTRAS=list      extras to install, comma-separated (default: plots,tensorboard; --test adds
#                           test); add models for spandrel, which needs a torchvision built for your torch;
#                           SRPREP_EXTRAS= (empty) installs srprep alone
#   SRPREP_TORCH=spec       torch requirement to install when the venv has none.
#                           Default: torch==2.13.0 (a CPU build where one is provided) on a machine
#                           without an NVIDIA driver; plain "torch" (CUDA wheels) when nvidia-smi works.
#                           A torch already present in the venv is always kept.
#   SRPREP_SKIP_APT=1       do not call apt-get (headers already present, or no root)
#   SRPREP_FORCE=1          redo everything even if the venv is up to date
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv=${SRPREP_VENV:-$here/.venv}
python=${SRPREP_PYTHON:-python3}
extras=${SRPREP_EXTRAS-plots,tensorboard}
case "${1:-}" in
  --test) extras="${extras:+$extras,}test" ;;
  "") ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

log() { printf '[setup] %s\n' "$*" >&2; }

# 0. Up to date? The stamp records what the venv was built from (this script, the package metadata, the C
#    kernel, the interpreter) and the extras installed. srprep itself is an editable install, so edits to its
#    Python files need no reinstall.
stamp_file="$venv/.srprep-setup"
source_hash=$(cat "$here/scripts/setup.sh" "$here/setup.cfg" "$here/setup.py" "$here/pyproject.toml" \
  "$here/srprep/ops/_bicubic_native.c" | sha256sum | cut -c1-16)
up_to_date() {
  [ "${SRPREP_FORCE:-0}" != 1 ] && [ -x "$venv/bin/python" ] && [ -f "$stamp_file" ] || return 1
  [ "$(sed -n 1p "$stamp_file")" = "$source_hash $("$venv/bin/python" -c 'import platform; print(platform.python_version())')" ] || return 1
  # a package installed since may have put plain Pillow over pillow-simd: then this run repairs it
  "$venv/bin/python" -c 'import importlib.metadata as m, PIL, sys; sys.exit(PIL.__version__ != m.version("pillow-simd"))' \
    2>/dev/null || return 1
  local have e
  have=",$(sed -n 2p "$stamp_file"),"
  for e in ${extras//,/ }; do
    case "$have" in *",$e,"*) ;; *) return 1 ;; esac
  done
}
if up_to_date; then
  log "up to date: $venv (extras: $(sed -n 2p "$stamp_file")$(sed -n 3p "$stamp_file" | sed 's/./; unusable here: &/'));" \
    "SRPREP_FORCE=1 redoes it"
  exit 0
fi

# 1. System headers pillow-simd is compiled against (zlib for PNG, libjpeg-turbo for JPEG, libtiff/libwebp
#    for the optional codecs) and a compiler.
apt_pkgs="build-essential python3-dev zlib1g-dev libjpeg62-turbo-dev libpng-dev libtiff-dev libwebp-dev"
if [ "${SRPREP_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
  missing=$(for p in $apt_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    # Ubuntu names the libjpeg-turbo headers libjpeg-turbo8-dev.
    if ! apt-cache show libjpeg62-turbo-dev >/dev/null 2>&1; then
      $sudo apt-get update -qq
    fi
    if ! apt-cache show libjpeg62-turbo-dev >/dev/null 2>&1; then
      missing=$(echo "$missing" | sed 's/libjpeg62-turbo-dev/libjpeg-turbo8-dev/')
    fi
    log "apt-get install $(echo $missing)"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
  fi
  # Optional, for the tests: Graphviz renders pipeline graphs (srprep run --graph-png/--graph-svg).
  if [ "${1:-}" = --test ] && ! command -v dot >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq graphviz >/dev/null 2>&1 \
      || log "graphviz not installed (optional: the graph-rendering test will skip)"
  fi
fi

# 2. The venv.
if [ ! -x "$venv/bin/python" ]; then
  log "creating venv $venv"
  "$python" -m venv "$venv"
fi
rm -f "$stamp_file"
logfile="$venv/setup.log"
: >"$logfile"
# pip's own chatter (build warnings) goes to a log; a failure shows its tail.
pip() {
  if ! "$venv/bin/python" -m pip "$@" >>"$logfile" 2>&1; then
    tail -n 40 "$logfile" >&2
    log "pip $* failed (full log: $logfile)"
    exit 1
  fi
}
pip install --upgrade pip setuptools wheel

# 3. torch: keep one that is there; otherwise pin a CPU build unless this machine has an NVIDIA driver.
if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
  if [ -n "${SRPREP_TORCH:-}" ]; then spec=$SRPREP_TORCH
  elif command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; then spec="torch"
  else spec="torch==2.13.0"
  fi
  log "pip install $spec"
  pip install "$spec"
fi

# 4. srprep, its dependencies and the extras, in one resolution. torch is pinned to the build that is there:
#    an extra that needs torchvision must not pull a newer torch (several GB of CUDA packages).
"$venv/bin/python" -c 'import torch; print("torch==" + torch.__version__)' >"$venv/constraints.txt"
log "pip install -e .${extras:+[$extras]} ($(cat "$venv/constraints.txt"))"
pip install -c "$venv/constraints.txt" -e "$here${extras:+[$extras]}"

# 5. pillow-simd last. pillow-simd and plain pillow both own PIL/: when anything pulled pillow in, removing it
#    also removes files pillow-simd had written there, so pillow-simd is reinstalled over it (pip caches the
#    wheel it built from source, so this is quick after the first time). The packages that require "pillow"
#    then run on pillow-simd, which provides the same PIL API; `pip check` lists them as missing "pillow",
#    which is expected.
if "$venv/bin/python" -m pip show pillow >/dev/null 2>&1; then
  needs=$("$venv/bin/python" -m pip show pillow 2>/dev/null | sed -n 's/^Required-by: //p')
  log "plain pillow came with: ${needs:-?}; replacing it with pillow-simd"
  pip uninstall -y pillow
  pip install --force-reinstall --no-deps --no-binary pillow-simd "pillow-simd$(
    "$venv/bin/python" - <<'PY'
import importlib.metadata as md
try:
    print("==" + md.version("pillow-simd"))
except md.PackageNotFoundError:
    print("")
PY
  )"
fi

# 6. Check the result: PIL is pillow-simd, the compiled kernel was built, and each extra works on this PIL.
#    (Exit status 3: only the models extra is unusable; it is removed and the set-up goes on without it.)
if SRPREP_SETUP_EXTRAS="$extras" "$venv/bin/python" - <<'PY'
import importlib.metadata as md, os, sys, tempfile
import PIL

def fail(msg):
    sys.exit(f"[setup] {msg}")

try:
    want = md.version("pillow-simd")
except md.PackageNotFoundError:
    fail("pillow-simd is not installed")
if PIL.__version__ != want:
    fail(f"PIL is {PIL.__version__}, not the pillow-simd build {want}: plain pillow clobbered it")
print(f"[setup] ok: pillow-simd {PIL.__version__}", file=sys.stderr)
from srprep.ops.imresize import native_available
if not native_available():
    fail("the compiled bicubic kernel (srprep/ops/_bicubic_native.c) was not built: is a C compiler installed? "
         "(see setup.log in the venv)")
print("[setup] ok: compiled bicubic kernel", file=sys.stderr)
extras = set(filter(None, os.environ["SRPREP_SETUP_EXTRAS"].split(",")))
with tempfile.TemporaryDirectory() as tmp:
    if "plots" in extras:  # matplotlib writes PNGs through PIL
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(2, 1))
        ax.plot([0, 1], [1, 0])
        fig.savefig(os.path.join(tmp, "check.png"))
        plt.close(fig)
        print(f"[setup] ok: matplotlib {matplotlib.__version__} draws on pillow-simd", file=sys.stderr)
    if "tensorboard" in extras:  # images in event files are encoded by PIL
        import numpy as np
        from torch.utils.tensorboard import SummaryWriter
        w = SummaryWriter(tmp)
        w.add_image("check", np.zeros((8, 8, 3), np.uint8), 0, dataformats="HWC")
        w.close()
        print(f"[setup] ok: tensorboard {md.version('tensorboard')} writes events", file=sys.stderr)
    if "models" in extras:
        try:
            import spandrel
        except Exception as exc:  # torchvision built for another torch (PyPI's are CUDA builds) fails here
            import torch
            print(f"[setup] models: spandrel cannot be imported ({type(exc).__name__}: {exc}): it needs a "
                  f"torchvision built for this torch ({torch.__version__}); for a CPU build take both from "
                  f"https://download.pytorch.org/whl/cpu. Removing spandrel and torchvision again.", file=sys.stderr)
            sys.exit(3)
        print(f"[setup] ok: spandrel {spandrel.__version__} ({len(spandrel.MAIN_REGISTRY)} architectures)",
              file=sys.stderr)
PY
then :
else
  code=$?
  [ "$code" = 3 ] || exit "$code"
  pip uninstall -y spandrel torchvision
  unusable="models"
fi

# 7. Tests only: plain Pillow in a folder of its own (not the venv's PIL, which stays pillow-simd). The tests
#    run it in a subprocess with that folder first on sys.path, to check srprep's Pillow-exact resize.
case ",$extras," in
  *,test,*)
    log "pip install --target $venv/plain-pillow pillow (tests only)"
    pip install --upgrade --target "$venv/plain-pillow" pillow ;;
esac

# The stamp: line 1 what the venv was built from, line 2 the extras asked for (a rerun asking for no more is
# up to date), line 3 those that could not be used here.
printf '%s %s\n%s\n%s\n' "$source_hash" "$("$venv/bin/python" -c 'import platform; print(platform.python_version())')" \
  "$extras" "${unusable:-}" >"$stamp_file"
log "done: $venv"
