#!/usr/bin/env bash
# The main job on the bundled sample images: set up (if needed), then prepare a small SR dataset.
#   bash scripts/quickstart.sh [OUT]      (default OUT: ./quickstart)
# Re-running it does nothing that is already done: the set-up returns at once when the venv is up to date
# with this tree (scripts/setup.sh keeps a stamp), and every step of the pipeline is cached.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-quickstart}
venv=${SRPREP_VENV:-$here/.venv}
bash "$here/scripts/setup.sh"
# downsample -> tiny teacher -> ECO centroids -> LMDB -> ECO training -> Set5 evaluation (srprep/pipelines/quickstart.yaml)
"$venv/bin/srprep" run quickstart --workdir "$out"
