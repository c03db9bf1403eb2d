#!/usr/bin/env bash
# The main job on the bundled sample images: set up (if needed), then prepare a small SR dataset.
#   bash scripts/quickstart.sh [OUT]      (default OUT: ./quickstart)
# Re-running it does nothing that is already done: every step is cached.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-quickstart}
bash "$here/scripts/setup.sh"
srprep="$here/.venv/bin/srprep"
samples="$here/srprep/samples"
"$srprep" modcrop "$samples/set5" "$out/Set5/HR_mod4" --scale 4
"$srprep" status "$out"
