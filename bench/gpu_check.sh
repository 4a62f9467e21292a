#!/usr/bin/env bash
# The GPU check (issue 10), one call on a fresh NVIDIA machine with the CUDA toolkit, CuPy and
# PyTorch but no network (an H200 here: Python 3.12, torch 2.11+cu130, cupy-cuda13x 14.2, nvcc 13.0):
#   1. build recfast (and recfast._cuda for sm_90) into the running python, editable;
#   2. run the tests marked gpu (and the rest of tests/test_gpu.py);
#   3. compute-sanitizer memcheck over a short subset, when the tool runs on this machine;
#   4. the GPU benchmarks (recfast cuda vs the cupy fallback vs PyTorch), one table printed last.
# Under 8 minutes: each step has its own time limit. array-api-compat, which that image lacks, is
# installed from ./.whl when present, else taken from SciPy's vendored copy.
# Environment: PY (default python3), RECFAST_ML100K (folder with u.data; default: the first of
# ../shared/data/ml-100k and .gpudata/ml-100k that exists), OUT (logs; default a temp folder).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-$(mktemp -d)}
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
T0=$SECONDS
status=()
note() { printf '\n=== %s (%ss)\n' "$1" "$((SECONDS - T0))"; }

note "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
nvcc --version | tail -1
"$PY" -c "import sys, torch, cupy; print(sys.version.split()[0], 'torch', torch.__version__, 'cupy', cupy.__version__)"

if ! "$PY" -c "import array_api_compat" 2>/dev/null; then
  mkdir -p /tmp/rf-site
  export PYTHONPATH=/tmp/rf-site${PYTHONPATH:+:$PYTHONPATH}
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/rf-site .whl/*.whl
  else  # no network: SciPy's (or scikit-learn's) vendored copy of the same package
    vendored=$("$PY" -c "import os, scipy._lib.array_api_compat as m; print(os.path.dirname(m.__file__))" \
      2>/dev/null || "$PY" -c "import os, sklearn.externals.array_api_compat as m; print(os.path.dirname(m.__file__))")
    ln -sfn "$vendored" /tmp/rf-site/array_api_compat
    echo "array-api-compat: using the vendored copy at $vendored"
  fi
fi

note "build (RECFAST_CUDA=1, sm_90)"
if RECFAST_CUDA=1 RECFAST_CUDA_ARCH=90 RECFAST_REQUIRE_EXT=1 RECFAST_BUILD_JOBS=8 \
  RECFAST_CUDA_PTXAS_LOG="$OUT/ptxas.log" timeout 300 \
  "$PY" -m pip install -q --no-build-isolation --no-deps -e . >"$OUT/build.log" 2>&1; then
  status+=("build: ok")
else
  tail -40 "$OUT/build.log"
  status+=("build: FAILED (see build.log)")
fi
"$PY" -c "import recfast; recfast.show_config()" 2>&1 | tail -12
grep -c "spill stores" "$OUT/ptxas.log" 2>/dev/null | sed 's/^/ptxas reports: /'
grep -B1 -E "[1-9][0-9]* bytes spill (stores|loads)" "$OUT/ptxas.log" 2>/dev/null | head -8

note "tests/test_gpu.py (the gpu-marked tests and the no-device ones)"
if timeout 240 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py -rs >"$OUT/tests.log" 2>&1; then
  status+=("gpu tests: $(tail -1 "$OUT/tests.log")")
else
  grep -E "^(FAILED|ERROR)|Error" "$OUT/tests.log" | head -30
  status+=("gpu tests: FAILED: $(tail -1 "$OUT/tests.log")")
fi
tail -3 "$OUT/tests.log"

note "compute-sanitizer memcheck (short subset)"
if command -v compute-sanitizer >/dev/null; then
  timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 "$PY" -m pytest -q -x \
    -p no:cacheprovider tests/test_gpu.py \
    -k "float32 and cuda and (hogwild and 64 or blocked or dense and relu or lstm or conv2d or pool)" \
    >"$OUT/memcheck.log" 2>&1
  rc=$?
  tail -4 "$OUT/memcheck.log"
  case $rc in
    0) status+=("memcheck: clean") ;;
    9) status+=("memcheck: ERRORS (see memcheck.log)") ;;
    124) status+=("memcheck: timed out") ;;
    *) status+=("memcheck: could not run here (rc $rc; gVisor refuses the device)") ;;
  esac
else
  status+=("memcheck: compute-sanitizer not on PATH")
fi

note "benchmarks"
DATA=${RECFAST_ML100K:-}
for d in ../shared/data/ml-100k .gpudata/ml-100k; do
  if [ -z "$DATA" ] && [ -f "$d/u.data" ]; then DATA=$d; fi
done
printf '%s\n' "${status[@]}"
timeout 200 "$PY" -m recfast.bench gpu ${DATA:+--data "$DATA"} --json "$OUT/gpu.jsonl" 2>&1 \
  | tee "$OUT/bench.log"
echo "(total $((SECONDS - T0)) s; logs in $OUT)"
