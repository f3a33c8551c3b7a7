#!/bin/sh
# Stand-in for `make` in NVIDIA's closed/NVIDIA (MLCommons inference_results_v4.1), tests only.
# Targets and variables follow the real Makefiles; the Python side (code.main,
# scripts.get_system_id) is tests/standin/python3.sh. /work/standin.conf (test control, not
# harness state) may set MODE (ok, hang, hang_engines, exit_nonzero, leak, wrong_dir,
# fail_step, disagree),
# FAIL_STEP, VERSION (4.0 or 4.1), SM (compute capability, 90 = Hopper) and the hardware the
# container sees (GPU_NAME, GPU_COUNT, CPU_NAME: see python3.sh).
MODE=ok
VERSION=4.1
FAIL_STEP=""
SM=80
[ -f /work/standin.conf ] && . /work/standin.conf
target=$1
shift
RUN_ARGS=""
# Makefile.const: `export LOG_DIR ?= $(BUILD_DIR)/logs/$(TIMESTAMP)`
LOG_DIR=/work/build/logs/$(date +%Y.%m.%d-%H.%M.%S)
BENCHMARKS=""
BUILD_TRTLLM=""
BUILD_TRITON=0
for a in "$@"; do
  case "$a" in
    RUN_ARGS=*) RUN_ARGS=${a#RUN_ARGS=} ;;
    LOG_DIR=*) LOG_DIR=${a#LOG_DIR=} ;;
    BENCHMARKS=*) BENCHMARKS=${a#BENCHMARKS=} ;;
    BUILD_TRTLLM=*) BUILD_TRTLLM=${a#BUILD_TRTLLM=} ;;
    BUILD_TRITON=*) BUILD_TRITON=${a#BUILD_TRITON=} ;;
  esac
done
export LOG_DIR
calls=/work/standin-calls.log
step_ok() {
  if [ "$MODE" = fail_step ] && [ "$1" = "$FAIL_STEP" ]; then
    echo "error: $1 failed: no space left on device"
    exit 2
  fi
}
links() {
  mkdir -p /work/build "$MLPERF_SCRATCH_PATH/data" "$MLPERF_SCRATCH_PATH/models" "$MLPERF_SCRATCH_PATH/preprocessed_data"
  ln -sfn "$MLPERF_SCRATCH_PATH/data" /work/build/data
  ln -sfn "$MLPERF_SCRATCH_PATH/models" /work/build/models
  ln -sfn "$MLPERF_SCRATCH_PATH/preprocessed_data" /work/build/preprocessed_data
}
# Makefile: generate_engines, run_harness and run_audit_test01_once depend on link_dirs
# (phony: its recipe runs again each time; not logged here, so tests count the steps)
case "$target" in generate_engines|run_harness|run_audit_test01_once) links ;; esac
case "$target" in
  link_dirs)
    # Makefile.build link_dirs: build/ in the checkout, data/model dirs linked to the scratch path
    echo "link_dirs" >> $calls
    step_ok link_dirs
    links
    echo "link_dirs: ok" ;;
  download_data|download_model|preprocess_data)
    echo "$target $BENCHMARKS" >> $calls
    step_ok "$target"
    echo "$target $BENCHMARKS: ok" ;;
  build)
    # Makefile.build: BUILD_TRTLLM ?= 1 when SM is 90 or 100 (Hopper, Blackwell), else 0;
    # BUILD_TRITON ?= 0; `build` clones and builds Triton / TensorRT-LLM only when they are 1.
    if [ -z "$BUILD_TRTLLM" ]; then
      case "$SM" in 90|100) BUILD_TRTLLM=1 ;; *) BUILD_TRTLLM=0 ;; esac
    fi
    echo "build BUILD_TRTLLM=$BUILD_TRTLLM BUILD_TRITON=$BUILD_TRITON" >> $calls
    step_ok build
    [ "$BUILD_TRITON" = 1 ] && echo "[I] building Triton"
    [ "$BUILD_TRTLLM" = 1 ] && echo "[I] cloning and building TensorRT-LLM (hours)"
    echo "build: ok" ;;
  generate_engines)
    # Makefile: generate_engines: link_dirs; python3 -m code.main $(RUN_ARGS) --action="generate_engines"
    # shellcheck disable=SC2086
    exec python3 -m code.main $RUN_ARGS --action=generate_engines ;;
  run_harness)
    # Makefile: mkdir -p $(LOG_DIR); code.main --action="run_harness" | tee $(LOG_DIR)/stdout.txt
    mkdir -p "$LOG_DIR"
    set -o pipefail
    # shellcheck disable=SC2086
    python3 -m code.main $RUN_ARGS --action=run_harness 2>&1 | tee "$LOG_DIR/stdout.txt"
    exit $? ;;
  run)
    # Makefile: run = generate_engines, then run_harness (v4.1 rebuilds every engine each time)
    make generate_engines "RUN_ARGS=$RUN_ARGS" || exit $?
    exec make run_harness "RUN_ARGS=$RUN_ARGS" "LOG_DIR=$LOG_DIR" ;;
  run_audit_test01_once)
    # Makefile: code.main $(RUN_ARGS) --audit_test=TEST01 --action="run_audit_harness"
    # shellcheck disable=SC2086
    exec python3 -m code.main $RUN_ARGS --audit_test=TEST01 --action=run_audit_harness ;;
  *) echo "make: *** No rule to make target '$target'.  Stop."; exit 2 ;;
esac
