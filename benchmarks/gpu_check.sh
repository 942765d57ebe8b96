#!/usr/bin/env bash
# GPU check of qdiff's CuPy backend, for a machine with an NVIDIA GPU and no network.
#
#   bash benchmarks/gpu_check.sh               # results in $OUT (the device tool's folder) or ./gpu_results
#
# Steps (each logged; a failing step does not stop the later ones):
#   1. install the wheels carried in .whl/ (if any) into /tmp/site: nothing else is fetched;
#   2. report the GPU, Python and the packages qdiff needs (numpy, scipy, cupy; numba optional);
#   3. pytest tests/test_cupy_backend.py tests/test_cupy_executor.py (kernel compile, index model, every
#      CupyBackend primitive vs NumpyBackend on the GPU; the cupy-blocked executor's fused passes vs the
#      reference executor). It runs with --noconftest: tests/conftest.py imports PennyLane, which the GPU
#      machine lacks, and these files need none of it;
#   4. the whole suite with QDIFF_TEST_BACKEND=cupy, only if PennyLane imports (carry its wheels in .whl/,
#      e.g. `pip download --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64
#      -d .whl pennylane==0.45.1 pennylane-lightning==0.45.0` plus their missing dependencies);
#   5. benchmarks/gpu_bench.py (bandwidth, per-gate times at n=28, one fused pass at n=28, SEL forward/
#      adjoint with the cupy-blocked vs reference executor n=16..28, SEL forward/adjoint n=16..30,
#      batched gradients), within GPU_BENCH_BUDGET seconds.
# Files written: gpu_check.log, summary.json, pytest_cupy.xml, pytest_suite.xml (step 4), gpu_bench.json.
#
# Knobs (environment): PYTHON (default python3), GPU_BENCH_BUDGET (seconds, default 240),
# GPU_BENCH_ARGS (extra gpu_bench.py arguments, e.g. "--quick"), GPU_CHECK_SUITE=0 (skip step 4),
# GPU_TESTS_TIMEOUT / GPU_SUITE_TIMEOUT (seconds, default 240 / 180).
# The device tool runs it as: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=600).

set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
RESULTS="${OUT:-$ROOT/gpu_results}"
mkdir -p "$RESULTS"
LOG="$RESULTS/gpu_check.log"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
BUDGET="${GPU_BENCH_BUDGET:-240}"
START=$(date +%s)
stamp() { echo "[$(( $(date +%s) - START ))s] $*"; }

main() {

# -- 1. wheels ---------------------------------------------------------------------------------------
WHEELS="none"
if compgen -G ".whl/*.whl" > /dev/null; then
    stamp "installing $(ls .whl/*.whl | wc -l) wheel(s) from .whl/ into /tmp/site"
    if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; then
        WHEELS="installed"
    else
        WHEELS="failed"
        stamp "WARNING: wheel install failed; continuing with what the machine has"
    fi
fi
# the checkout's qdiff comes first, then the carried wheels, then the machine's packages
export PYTHONPATH="$ROOT:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"

# -- 2. environment ----------------------------------------------------------------------------------
stamp "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || stamp "nvidia-smi failed"
command -v nvcc > /dev/null && nvcc --version | tail -n 2
"$PY" - <<'EOF'
import importlib, sys
print("python", sys.version.split()[0], sys.executable)
for name in ("numpy", "scipy", "numba", "cupy", "pytest", "pennylane", "qdiff"):
    try:
        mod = importlib.import_module(name)
        print(f"  {name:10s} {getattr(mod, '__version__', '?'):12s} {getattr(mod, '__file__', '')}")
    except Exception as exc:
        print(f"  {name:10s} MISSING ({type(exc).__name__}: {exc})")
from qdiff.backends import cupy_status
print("cupy_status:", cupy_status())
EOF
if ! "$PY" -c "import qdiff, cupy; from qdiff.backends import cupy_status; assert cupy_status()[0]"; then
    stamp "ERROR: qdiff or CuPy not usable here (see above); the GPU tests would all skip"
fi

# -- 3. CuPy backend tests ---------------------------------------------------------------------------
stamp "pytest tests/test_cupy_backend.py tests/test_cupy_executor.py"
timeout "${GPU_TESTS_TIMEOUT:-240}" "$PY" -m pytest tests/test_cupy_backend.py tests/test_cupy_executor.py \
    --noconftest -p no:cacheprovider -q -rs --durations=10 --junitxml="$RESULTS/pytest_cupy.xml"
RC_TESTS=$?
stamp "cupy backend and executor tests: exit $RC_TESTS"

# -- 4. full suite on the cupy backend ---------------------------------------------------------------
RC_SUITE="skipped"
if [ "${GPU_CHECK_SUITE:-1}" = "0" ]; then
    stamp "full suite skipped (GPU_CHECK_SUITE=0)"
elif "$PY" -c "import pennylane" 2> /dev/null; then
    stamp "pytest tests (QDIFF_TEST_BACKEND=cupy)"
    QDIFF_TEST_BACKEND=cupy timeout "${GPU_SUITE_TIMEOUT:-180}" "$PY" -m pytest tests -p no:cacheprovider -q -x \
        --junitxml="$RESULTS/pytest_suite.xml"
    RC_SUITE=$?
    stamp "full suite: exit $RC_SUITE"
else
    stamp "full suite skipped: PennyLane is not importable here (tests/conftest.py needs it); carry its wheels in .whl/"
fi

# -- 5. benchmark ------------------------------------------------------------------------------------
stamp "gpu_bench.py (budget ${BUDGET}s)"
# shellcheck disable=SC2086
timeout $(( BUDGET + 120 )) "$PY" benchmarks/gpu_bench.py --out "$RESULTS/gpu_bench.json" --budget "$BUDGET" \
    ${GPU_BENCH_ARGS:-}
RC_BENCH=$?
stamp "benchmark: exit $RC_BENCH"

# -- summary -----------------------------------------------------------------------------------------
RC_TESTS=$RC_TESTS RC_SUITE=$RC_SUITE RC_BENCH=$RC_BENCH WHEELS=$WHEELS RESULTS="$RESULTS" "$PY" - <<'EOF'
import json, os, xml.etree.ElementTree as ET
res = os.environ["RESULTS"]
summary = {k.lower(): os.environ[k] for k in ("RC_TESTS", "RC_SUITE", "RC_BENCH", "WHEELS")}
for name in ("pytest_cupy", "pytest_suite"):
    path = os.path.join(res, name + ".xml")
    if os.path.exists(path):
        root = ET.parse(path).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        summary[name] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        summary[name]["failed_tests"] = [
            f"{tc.get('classname')}::{tc.get('name')}" for tc in suite.iter("testcase")
            if tc.find("failure") is not None or tc.find("error") is not None][:50]
bench = os.path.join(res, "gpu_bench.json")
if os.path.exists(bench):
    data = json.load(open(bench))
    summary["bench_errors"] = len(data.get("errors", []))
    summary["device"] = data.get("device", {}).get("name")
json.dump(summary, open(os.path.join(res, "summary.json"), "w"), indent=1)
print(json.dumps(summary, indent=1))
EOF
stamp "done; files in $RESULTS"
[ "$RC_TESTS" = "0" ] && [ "$RC_BENCH" = "0" ]
}

main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
