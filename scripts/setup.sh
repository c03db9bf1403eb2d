#!/usr/bin/env bash
# Set up srprep in a virtual environment on a Debian/Ubuntu machine.
#
#   bash scripts/setup.sh            runtime only
#   bash scripts/setup.sh --test     runtime + test tools (pytest, hypothesis, scipy; plain Pillow in
#                                    <venv>/plain-pillow, outside the venv's PIL, for reference tests)
#
# Environment knobs:
#   SRPREP_VENV=path        where the venv lives (default: .venv in the repository)
#   SRPREP_PYTHON=python3   interpreter used to create it (Python >= 3.11)
#   SRPREP_TORCH=spec       torch requirement to install when the venv has none.
#                           Default: torch==2.13.0 (a CPU build where one is provided) on a machine
#                           without an NVIDIA driver; plain "torch" (CUDA wheels) when nvidia-smi works.
#                           A torch already present in the venv is always kept.
#   SRPREP_SKIP_APT=1       do not call apt-get (headers already present, or no root)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv=${SRPREP_VENV:-$here/.venv}
python=${SRPREP_PYTHON:-python3}
extras=""
case "${1:-}" in
  --test) extras="[test]" ;;
  "") ;;
  *) echo "usage: $0 [--test|--bench]" >&2; exit 2 ;;
esac

log() { printf '[setup] %s\n' "$*" >&2; }

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
fi

# 2. The venv.
if [ ! -x "$venv/bin/python" ]; then
  log "creating venv $venv"
  "$python" -m venv "$venv"
fi
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

# 4. srprep and its dependencies. pillow-simd is built from source; plain Pillow must not be present
#    (both own the PIL/ folder), so it is removed first if anything pulled it in.
log "pip install -e .$extras"
pip install -e "$here$extras"
if "$venv/bin/python" -m pip show pillow >/dev/null 2>&1; then
  log "plain pillow found: replacing it with pillow-simd"
  pip uninstall -y pillow
  pip install --force-reinstall --no-deps --no-binary pillow-simd pillow-simd
fi
"$venv/bin/python" - <<'PY'
import importlib.metadata as md, PIL, sys
want = md.version("pillow-simd")
if PIL.__version__ != want:
    sys.exit(f"[setup] PIL is {PIL.__version__}, not the pillow-simd build {want}: plain pillow clobbered it")
print(f"[setup] ok: pillow-simd {PIL.__version__}", file=sys.stderr)
from srprep.ops.imresize import native_available
if not native_available():
    sys.exit("[setup] the compiled bicubic kernel (srprep/ops/_bicubic_native.c) was not built: is a C compiler "
             "installed? (see .venv/setup.log)")
print("[setup] ok: compiled bicubic kernel", file=sys.stderr)
PY

# 5. Tests only: plain Pillow in a folder of its own (not the venv's PIL, which stays pillow-simd). The tests
#    run it in a subprocess with that folder first on sys.path, to check srprep's Pillow-exact resize.
if [ -n "$extras" ]; then
  log "pip install --target $venv/plain-pillow pillow (tests only)"
  pip install --upgrade --target "$venv/plain-pillow" pillow
fi

log "done: $venv"
