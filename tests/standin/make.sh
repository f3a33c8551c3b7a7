#!/bin/sh
# Stand-in for NVIDIA's harness `make` (tests only): the same targets, the same output
# layout (LOG_DIR/<system>/<benchmark>/<Scenario>/ with LoadGen logs and metadata.json),
# v4.0's refusal of unknown flags and v4.1's silent ignoring of them.
# /work/standin.conf may set MODE (ok, hang, unknown_system, exit_nonzero, leak, wrong_dir,
# fail_step, disagree), FAIL_STEP and VERSION (4.0 or 4.1).
MODE=ok
VERSION=4.1
FAIL_STEP=""
[ -f /work/standin.conf ] && . /work/standin.conf
target=$1
shift
RUN_ARGS=""
LOG_DIR=/work/build/logs/default
BENCHMARKS=""
for a in "$@"; do
  case "$a" in
    RUN_ARGS=*) RUN_ARGS=${a#RUN_ARGS=} ;;
    LOG_DIR=*) LOG_DIR=${a#LOG_DIR=} ;;
    BENCHMARKS=*) BENCHMARKS=${a#BENCHMARKS=} ;;
  esac
done
echo "$target $BENCHMARKS" >> /work/standin-calls.log
case "$target" in
  link_dirs|download_data|download_model|preprocess_data|build)
    if [ "$MODE" = fail_step ] && [ "$target" = "$FAIL_STEP" ]; then
      echo "error: $target failed: no space left on device"
      exit 2
    fi
    echo "$target $BENCHMARKS: ok"
    exit 0
    ;;
  run) ;;
  *) echo "make: *** No rule to make target '$target'.  Stop."; exit 2 ;;
esac
bench=""; scen=""; mode=""; cv=""; quick=0
for a in $RUN_ARGS; do
  case "$a" in
    --benchmarks=*) bench=${a#--benchmarks=} ;;
    --scenarios=*) scen=${a#--scenarios=} ;;
    --test_mode=*) mode=${a#--test_mode=} ;;
    --config_ver=*) cv=${a#--config_ver=} ;;
    --test_run)
      if [ "$VERSION" = 4.0 ]; then echo "main.py: error: unrecognized arguments: --test_run"; exit 2; fi
      quick=1 ;;
    --fast)
      if [ "$VERSION" = 4.0 ]; then quick=1; fi ;;
    *)
      if [ "$VERSION" = 4.0 ]; then echo "main.py: error: unrecognized arguments: $a"; exit 2; fi ;;
  esac
done
echo "[I] Running $bench $scen $mode (config_ver=$cv, quick=$quick)"
case "$MODE" in
  hang) echo "[I] harness is hanging"; sleep 3600; exit 0 ;;
  unknown_system) echo "[E] Detected system did not match any known systems. Exiting."; exit 0 ;;
  exit_nonzero) echo "[E] Traceback: TensorRT engine build failed"; exit 1 ;;
  leak)
    # prints planted secrets (from standin.conf), then fails: nothing of them may reach a report
    echo "[I] env: HF_TOKEN=$LEAK_TOKEN"
    echo "[I] using token $LEAK_TOKEN for the model download"
    echo "[I] GET https://bot:$LEAK_PASSWORD@registry.example/v2/"
    echo "[I] header Authorization: Bearer $LEAK_BEARER"
    echo "[I] docker login as $LEAK_DOCKER_PAIR, password $LEAK_DOCKER_PASSWORD"
    echo "-----BEGIN RSA PRIVATE KEY-----"
    echo "$LEAK_PEM"
    echo "$LEAK_PEM"
    echo "-----END RSA PRIVATE KEY-----"
    echo "[E] Traceback: TensorRT engine build failed"
    exit 1 ;;
  wrong_dir) LOG_DIR=/work/build/logs/elsewhere ;;
esac
full="$bench-99"
if [ "$cv" = high_accuracy ]; then full="$bench-99.9"; fi
out="$LOG_DIR/STANDIN_SYSTEM_TRT/$full/$scen"
mkdir -p "$out"
# logs of a real LoadGen run: <Scenario>/, or <Scenario>-accuracy/ (AccuracyOnly) and
# <Scenario>-audit/ (audit.config in the working directory: a compliance audit) when given
src=/work/standin-logs/"$scen"
if [ "$mode" = AccuracyOnly ] && [ -d "$src-accuracy" ]; then src="$src-accuracy"; fi
if [ -f audit.config ]; then
  echo "[I] Found audit.config: compliance audit run"
  echo "audit $bench $scen" >> /work/standin-calls.log
  if [ -d "$src-audit" ]; then src="$src-audit"; fi
fi
cp "$src"/mlperf_log_* "$out"/
case "$scen" in
  Offline) key=result_samples_per_second ;;
  Server) key=result_completed_samples_per_sec ;;
  SingleStream) key=result_90.00_percentile_latency_ns ;;
  *) key=result_99.00_percentile_per_query_latency_ns ;;
esac
detail="$out/mlperf_log_detail.txt"
validity=$(grep '"key": "result_validity"' "$detail" | sed 's/.*"value": "\([A-Z]*\)".*/\1/' | head -n 1)
value=$(grep "\"key\": \"$key\"" "$detail" | sed 's/.*"value": \([0-9.e+-]*\).*/\1/' | head -n 1)
if [ "$quick" = 1 ]; then validity=INVALID; fi
if [ "$MODE" = disagree ]; then value=1; fi
accuracy=""
if [ "$mode" = AccuracyOnly ]; then
  name=F1; threshold=89.96526
  if [ "$bench" = 3d-unet ]; then name=DICE; threshold=0.853083; fi
  score=${ACCURACY:-90.2}
  accuracy="\"accuracy\": [{\"name\": \"$name\", \"value\": $score, \"threshold\": $threshold, \"pass\": true}], \"accuracy_pass\": true,"
fi
cat > "$out/metadata.json" <<JSON
{
  $accuracy
  "benchmark_full": "$full",
  "benchmark_short": "$bench",
  "config_name": "STANDIN_SYSTEM_TRT-custom_k_99_MaxP-$scen",
  "detected_system": "SystemConfiguration(system_id=\"STANDIN_SYSTEM\")",
  "result_validity": "$validity",
  "$key": $value,
  "scenario": "$scen",
  "scenario_key": "$key",
  "summary_string": "$key: $value, Result is $validity",
  "system_name": "STANDIN_SYSTEM_TRT",
  "tensorrt_version": "10.2.0",
  "test_mode": "$mode"
}
JSON
echo "[I] result: $key=$value $validity"
