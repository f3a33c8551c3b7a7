#!/usr/bin/env bash
# host_run.sh NVIDIA_DIR PY_BIN_DIR MITTEN_SRC OUT_DIR PROFILE BENCH:SCENARIO...
# Level 2 without Docker: NVIDIA's real Makefiles and `python3 -m code.main` in an extracted
# closed/NVIDIA (NVIDIA_DIR), "on" the kit's machine PROFILE (inprofile.sh: fake nvidia-smi,
# lscpu, /proc/meminfo), with the fake TensorRT build (REALNV_FAKES=1, the kit's
# sitecustomize), our fake harness binaries driving the real mlperf_loadgen and empty TensorRT
# plugin libraries (fake_plugins.sh; what `make build` would compile). Per pair:
#   make generate_engines RUN_ARGS='--benchmarks=B --scenarios=S --config_ver=default'
#   make run_harness RUN_ARGS='... --test_mode=PerformanceOnly --test_run' LOG_DIR=OUT_DIR/B-S
# PY_BIN_DIR: a bin/ whose python3 has NVIDIA's imports (typeguard 4.2.1, numpy, pandas, tqdm,
# onnx, onnx-graphsurgeon, mlcommons-loadgen) and whose libpython is not shadowed by
# Makefile.build's LD_LIBRARY_PATH (see docs/conformance.md). Needs root (inprofile.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
NV=${1:?closed/NVIDIA dir}; PYBIN=${2:?python bin dir}; MITTEN=${3:?mitten src}; OUT=${4:?out dir}
PROFILE=${5:?profile}; shift 5
KIT=${PYTEST_MLPERF_REAL_KIT:-$HERE/../../../../shared/tools/nvidia-real-harness}
mkdir -p "$OUT" "$NV/build/bin"
for exe in harness_bert harness_3dunet; do ln -sfn "$HERE/fake_harness.py" "$NV/build/bin/$exe"; done
"$HERE/fake_plugins.sh" "$NV/build/plugins"
export REALNV_FAKES=1 MLPERF_SCRATCH_PATH=${MLPERF_SCRATCH_PATH:-$OUT/scratch}
export REALNV_LG_MIN_DURATION_MS=${REALNV_LG_MIN_DURATION_MS:-1000} REALNV_LG_MAX_QPS=${REALNV_LG_MAX_QPS:-1000}
export PATH="$HERE/fakebin:$PYBIN:$PATH" PYTHONPATH="$MITTEN"
mkdir -p "$MLPERF_SCRATCH_PATH"
cd "$NV"
for pair in "$@"; do
  b=${pair%%:*}; s=${pair#*:}
  args="--benchmarks=$b --scenarios=$s --config_ver=default"
  echo "== $b $s: make generate_engines RUN_ARGS='$args'"
  "$KIT/inprofile.sh" "$PROFILE" make generate_engines RUN_ARGS="$args" >"$OUT/$b-$s-generate.log" 2>&1
  grep -E "REALNV fake TensorRT|Time taken" "$OUT/$b-$s-generate.log" || true
  echo "== $b $s: make run_harness RUN_ARGS='$args --test_mode=PerformanceOnly --test_run' LOG_DIR=$OUT/$b-$s"
  "$KIT/inprofile.sh" "$PROFILE" make run_harness RUN_ARGS="$args --test_mode=PerformanceOnly --test_run" \
    LOG_DIR="$OUT/$b-$s" >"$OUT/$b-$s-run.log" 2>&1
  grep -E "REALNV fake harness|run_harness.py.*Result:" "$OUT/$b-$s-run.log" || true
  find "$OUT/$b-$s" -name metadata.json
done
