#!/usr/bin/env bash
# Every GPU check of the project in one run (under 8 minutes on one GPU), one Markdown report.
#
#   benchmarks/device_check.sh [--cpu-smoke] [OUTDIR]
#
# Writes OUTDIR/device_check.md (OUTDIR: the argument, else $OUT, else benchmarks/device_out). Checks, each
# under its own time limit, each a section of the report (its Markdown, or FAILED with the tail of its log):
#   1. the CUDA tests (pytest -m cuda: resize exactness, degrade, downsample and upscale on the device)
#   2. MATLAB bicubic on CUDA: bytes differing from the numpy path, and throughput (bench_resize_device.py)
#   3. centroids fp32 / tf32 / bf16 on 2040x1356, EDSR paper x2 with random weights (bench_centroids.py)
#   4. degradations: batched on the device vs per sample (bench_degrade.py)
#   5. trainer vs a plain PyTorch loop, EDSR baseline and paper x2 (bench_train.py)
#   6. upscale per architecture and precision, IMDN x2 on Set5 where the data is present (bench_upscale.py)
# Without CUDA it writes a report saying so and exits 0. --cpu-smoke runs every check tiny on the CPU (to
# test this script without a GPU); its figures mean nothing. Python: $PYTHON, else .venv/bin/python, else
# python3. Exit status: 0 when every check passed (or CUDA is absent), 1 when one failed.
set -u
cd "$(dirname "$0")/.."
SMOKE=0
DEST=""
for arg in "$@"; do
    case "$arg" in
        --cpu-smoke) SMOKE=1 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "device_check.sh: unknown option $arg" >&2; exit 2 ;;
        *) DEST="$arg" ;;
    esac
done
DEST="${DEST:-${OUT:-benchmarks/device_out}}"
mkdir -p "$DEST/logs"
REPORT="$DEST/device_check.md"
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DATA=""
for d in shared/data ../shared/data; do [ -d "$d" ] && DATA="$d" && break; done

{
    echo "# Device check"
    echo
    echo "Date $(date -u +%Y-%m-%dT%H:%MZ); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)."
} > "$REPORT"

if [ "$SMOKE" = 1 ]; then
    echo "CPU smoke run (--cpu-smoke): every check tiny on the CPU; the figures mean nothing." >> "$REPORT"
    DEV=cpu
else
    if ! GPU=$("$PY" -c 'import torch, sys; ok = torch.cuda.is_available(); print(torch.cuda.get_device_name(0) if ok else ""); sys.exit(0 if ok else 3)' 2>"$DEST/logs/probe.log"); then
        echo "No CUDA device visible to torch ($("$PY" -c 'import torch; print("torch", torch.__version__)' 2>&1 | tail -1)): every check skipped." >> "$REPORT"
        echo "device_check.sh: no CUDA device; nothing run (report: $REPORT)"
        exit 0
    fi
    echo "GPU: $GPU ($(nvidia-smi --query-gpu=driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi n/a'))." >> "$REPORT"
    DEV=cuda
fi

FAILED=0
START=$(date +%s)
# check NAME LIMIT_SECONDS COMMAND...: run it with a time limit, its stdout into the report
check() {
    local name="$1" limit="$2"; shift 2
    local log="$DEST/logs/${name// /_}.log" out="$DEST/logs/${name// /_}.md" t0 rc
    t0=$(date +%s)
    echo "device_check.sh: $name (limit ${limit}s) ..." >&2
    timeout --kill-after=10 "$limit" "$@" > "$out" 2> "$log"
    rc=$?
    {
        echo
        echo "## $name"
        echo
        if [ $rc -eq 0 ]; then
            echo "ok in $(( $(date +%s) - t0 )) s: \`$*\`"
            echo
            sed 's/^## /### /' "$out"
        else
            FAILED=1
            [ $rc -eq 124 ] && why="timed out after ${limit} s" || why="exit status $rc"
            echo "FAILED ($why) in $(( $(date +%s) - t0 )) s: \`$*\`"
            echo
            echo '```'
            tail -n 25 "$out" "$log"
            echo '```'
        fi
    } >> "$REPORT"
}

if [ "$SMOKE" = 1 ]; then
    check "CUDA tests" 120 "$PY" -m pytest -q -m cuda -p no:cacheprovider tests/ops/test_imresize.py \
        tests/ops/degrade/test_pipeline.py tests/stages/test_downsample.py tests/test_infer.py
    check "resize on the device" 60 "$PY" benchmarks/bench_resize_device.py --device cpu --size 96x64 \
        --scales 2 --repeats 1
    check "centroids precisions" 120 "$PY" benchmarks/bench_centroids.py --device cpu --images 1 \
        --hr-size 64x64 --arch edsr_baseline --precisions fp32 bf16
    check "degrade batch vs per-sample" 90 "$PY" benchmarks/bench_degrade.py --device cpu --batches 1 --batch 2
    check "trainer vs plain loop" 150 "$PY" benchmarks/bench_train.py --device cpu --models edsr_baseline \
        --iters 1 --warmup 1 --repeats 1 --images 1 --image-size 192x192 --patch 48 --batch 2 --workers 0
    check "upscale" 90 "$PY" benchmarks/bench_upscale.py --device cpu --archs imdn_x2 --size 32 --min-time 0 \
        --max-runs 1 --precisions fp32 --data /nonexistent
else
    # limits add up to 460 s; on a GPU each check takes a fraction of its limit
    check "CUDA tests" 60 "$PY" -m pytest -q -m cuda -p no:cacheprovider tests/ops/test_imresize.py \
        tests/ops/degrade/test_pipeline.py tests/stages/test_downsample.py tests/test_infer.py
    check "resize on the device" 40 "$PY" benchmarks/bench_resize_device.py --device cuda
    check "centroids precisions" 100 "$PY" benchmarks/bench_centroids.py --device cuda --images 4 \
        --hr-size 2040x1356 --arch edsr_paper --precisions fp32 tf32 bf16
    check "degrade batch vs per-sample" 50 "$PY" benchmarks/bench_degrade.py --device cuda --batches 10
    check "trainer vs plain loop" 150 "$PY" benchmarks/bench_train.py --device cuda \
        --models edsr_baseline,edsr_paper --iters 60 --warmup 10 --repeats 1 --images 4
    check "upscale" 60 "$PY" benchmarks/bench_upscale.py --device cuda --min-time 1 --max-runs 3 \
        --data "${DATA:-/nonexistent}"
fi

echo >> "$REPORT"
echo "Total $(( $(date +%s) - START )) s; $([ $FAILED = 0 ] && echo 'every check passed' || echo 'some checks FAILED')." >> "$REPORT"
echo "device_check.sh: report in $REPORT"
exit $FAILED
