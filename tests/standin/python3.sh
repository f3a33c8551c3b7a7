#!/bin/sh
# Stand-in for the harness's Python entry points, tests only (busybox sh, no Python):
#   python3 -m scripts.get_system_id      -> scripts/get_system_id.py: prints MATCHED_SYSTEM
#   python3 -m code.main RUN_ARGS --action=generate_engines|run_harness|run_audit_harness
# Each behaviour names the file of closed/NVIDIA (inference_results_v4.1) it follows.
# The hardware the harness "detects" comes from /work/standin.conf: GPU_NAME (as NVML names
# it), GPU_COUNT, CPU_NAME (as lscpu's "Model name" says it).
MODE=ok
VERSION=4.1
GPU_NAME="STANDIN GPU"
GPU_COUNT=1
CPU_NAME="AMD EPYC 7V12 64-Core Processor"
[ -f /work/standin.conf ] && . /work/standin.conf
calls=/work/standin-calls.log
[ "$1" = -m ] || { echo "python3: stand-in runs only -m modules" >&2; exit 2; }
module=$2
shift 2

# -- code/common/systems/system_list.py + known_hardware.py --------------------------------
# Built-in systems: id|NVML GPU name|count|CPU rule|. The H100/H200 SXM systems pin the
# host CPU to an Intel Xeon Platinum 8480C (add_systems(..., KnownCPU.Intel_Xeon_Platinum_8480C));
# A100_SXM4_40GB allows KnownCPU.x86_64_Generic (any "AMD..." or "Intel..." CPU).
# STANDIN_SYSTEM is the stand-in's own test system (no such entry in the real list).
BUILTIN="A100_SXM4_40GBx1|NVIDIA A100-SXM4-40GB|1|x86
A100_SXM4_40GBx8|NVIDIA A100-SXM4-40GB|8|x86
H100_SXM_80GBx1|NVIDIA H100 80GB HBM3|1|8480C
H100_SXM_80GBx8|NVIDIA H100 80GB HBM3|8|8480C
H200_SXM_141GBx1|NVIDIA H200|1|8480C
H200_SXM_141GBx8|NVIDIA H200|8|8480C
STANDIN_SYSTEM|STANDIN GPU|1|any"

cpu_ok() {  # $1: rule or an exact CPU name (custom systems)
  case "$1" in
    any) return 0 ;;
    x86) case "$CPU_NAME" in AMD*|Intel*) return 0 ;; esac; return 1 ;;
    8480C) case "$CPU_NAME" in "Intel(R) Xeon(R) Platinum 8480C"|"Intel(R) Xeon(R) Platinum 8480CL") return 0 ;; esac; return 1 ;;
    *) [ "$1" = "$CPU_NAME" ] ;;
  esac
}

known_gpu_name() {  # known_hardware.py KnownGPU member -> the name NVML reports
  case "$1" in
    A100_SXM4_40GB) echo "NVIDIA A100-SXM4-40GB" ;;
    H100_SXM_80GB) echo "NVIDIA H100 80GB HBM3" ;;
    H200_SXM_141GB) echo "NVIDIA H200" ;;
    *) return 1 ;;
  esac
}

# system_list.py: custom systems from $MLPINF_CUSTOM_DEFINITION_PATH/custom_systems/custom_list.py,
# else from code/common/systems/custom_list.py (absent in the release)
CUSTOM_DIR=""
if [ -n "${MLPINF_CUSTOM_DEFINITION_PATH+x}" ]; then
  if [ ! -e "$MLPINF_CUSTOM_DEFINITION_PATH" ]; then
    echo "FileNotFoundError: MLPINF_CUSTOM_DEFINITION_PATH $MLPINF_CUSTOM_DEFINITION_PATH does not exist."
    exit 1
  fi
  CUSTOM_DIR=$MLPINF_CUSTOM_DEFINITION_PATH
  custom_list=$CUSTOM_DIR/custom_systems/custom_list.py
else
  custom_list=/work/code/common/systems/custom_list.py
fi
CUSTOM=""
if [ -f "$custom_list" ]; then
  # the stub (scripts/custom_systems/stubs/custom_system.py.stub) imports these; without them
  # the module fails at import time, i.e. on every `make` target that runs Python
  for need in "code.common.systems.systems import SystemConfiguration" "code.common.systems.known_hardware import" "code.common.systems.cpu import"; do
    if ! grep -q "from $need" "$custom_list"; then
      echo "NameError: name '${need##* }' is not defined ($custom_list)"; exit 1
    fi
  done
  while IFS= read -r line; do
    id=$(echo "$line" | sed -n "s/^custom_systems\[['\"]\([A-Za-z0-9_]*\)['\"]\] *= *SystemConfiguration(.*/\1/p")
    [ -n "$id" ] || continue
    member=$(echo "$line" | sed -n 's/.*KnownGPU\.\([A-Za-z0-9_]*\)\.value: *\([0-9]*\).*/\1/p')
    count=$(echo "$line" | sed -n 's/.*KnownGPU\.\([A-Za-z0-9_]*\)\.value: *\([0-9]*\).*/\2/p')
    cpu=$(echo "$line" | sed -n "s/.*CPU(name=['\"]\([^'\"]*\)['\"].*/\1/p")
    gpu=$(known_gpu_name "$member") || { echo "AttributeError: KnownGPU has no member '$member'"; exit 1; }
    CUSTOM="$CUSTOM$id|$gpu|$count|$cpu
"
  done < "$custom_list"
fi

# MatchableEnum.get_first_match: built-in systems first, then the custom ones
MATCHED=""
while IFS='|' read -r id gpu count rule; do
  [ -n "$id" ] || continue
  if [ "$gpu" = "$GPU_NAME" ] && [ "$count" = "$GPU_COUNT" ] && cpu_ok "$rule"; then MATCHED=$id; break; fi
done <<LIST
$BUILTIN
$CUSTOM
LIST
DETECTED="SystemConfiguration(cpu='$CPU_NAME', gpus={'$GPU_NAME': $GPU_COUNT})"

if [ "$module" = scripts.get_system_id ]; then
  # scripts/get_system_id.py: print(MATCHED_SYSTEM)
  if [ -n "$MATCHED" ]; then echo "KnownSystem.$MATCHED"; else echo "None"; fi
  exit 0
fi
[ "$module" = code.main ] || { echo "No module named $module"; exit 1; }

# -- code/main.py --------------------------------------------------------------------------
if [ -z "$MATCHED" ]; then
  echo "[I] Detected system did not match any known systems. Exiting. $DETECTED"
  exit 0
fi
echo "[I] Detected system ID: KnownSystem.$MATCHED"
bench=""; scen=""; mode=PerformanceOnly; cv=default; quick=0; action=""; audit=""
for a in "$@"; do
  case "$a" in
    --benchmarks=*) bench=${a#--benchmarks=} ;;
    --scenarios=*) scen=${a#--scenarios=} ;;
    --test_mode=*) mode=${a#--test_mode=} ;;
    --config_ver=*) cv=${a#--config_ver=} ;;
    --action=*) action=${a#--action=} ;;
    --audit_test=*) audit=${a#--audit_test=} ;;
    --server_target_qps_adj_factor=*) ;;
    --test_run)
      if [ "$VERSION" = 4.0 ]; then echo "main.py: error: unrecognized arguments: --test_run"; exit 2; fi
      quick=1 ;;
    --fast)  # v4.0 had --fast; v4.1's parse_known_args ignores it silently
      if [ "$VERSION" = 4.0 ]; then quick=1; fi ;;
    *)
      if [ "$VERSION" = 4.0 ]; then echo "main.py: error: unrecognized arguments: $a"; exit 2; fi ;;
  esac
done

# configs/<benchmark>/<Scenario>/__init__.py: the built-in registrations (KnownSystem ids)
# for bert and 3d-unet in v4.1: no 8-GPU SingleStream, no A100_SXM4_40GBx8 bert Server,
# no 3d-unet Server at all.
builtin_configs() {
  case "$1/$2" in
    bert/Offline|3d-unet/Offline) echo "A100_SXM4_40GBx1 A100_SXM4_40GBx8 H100_SXM_80GBx1 H100_SXM_80GBx8 H200_SXM_141GBx1 H200_SXM_141GBx8 STANDIN_SYSTEM" ;;
    bert/Server) echo "H100_SXM_80GBx1 H100_SXM_80GBx8 H200_SXM_141GBx1 H200_SXM_141GBx8 STANDIN_SYSTEM" ;;
    bert/SingleStream|3d-unet/SingleStream) echo "A100_SXM4_40GBx1 H100_SXM_80GBx1 STANDIN_SYSTEM" ;;
  esac
}
# configs/configuration.py: custom configs from
# $MLPINF_CUSTOM_DEFINITION_PATH/custom_configs/<benchmark>/<Scenario>/custom.py, else from
# configs/<benchmark>/<Scenario>/custom.py; ConfigRegistry.register raises KeyError for a
# second registration of the same benchmark/scenario/system.
if [ -n "$CUSTOM_DIR" ]; then
  custom_cfg=$CUSTOM_DIR/custom_configs/$bench/$scen/custom.py
else
  custom_cfg=/work/configs/$bench/$scen/custom.py
fi
registered=0
for id in $(builtin_configs "$bench" "$scen"); do [ "$id" = "$MATCHED" ] && registered=1; done
if [ -f "$custom_cfg" ]; then
  if ! grep -q "^from configs\.$bench\.$scen import \*" "$custom_cfg"; then
    echo "NameError: name 'ConfigRegistry' is not defined ($custom_cfg)"; exit 1
  fi
  for id in $(sed -n 's/^ *system *= *KnownSystem\.\([A-Za-z0-9_]*\).*/\1/p' "$custom_cfg"); do
    if ! printf '%s\n%s\n' "$BUILTIN" "$CUSTOM" | grep -q "^$id|"; then
      echo "AttributeError: KnownSystem has no member '$id' ($custom_cfg)"; exit 1
    fi
    if [ "$id" = "$MATCHED" ]; then
      if [ "$registered" = 1 ]; then
        echo "KeyError: 'Config for $bench/$scen/KnownSystem.$id is already registered.'"; exit 1
      fi
      registered=1
    fi
  done
fi
if [ "$registered" = 0 ]; then
  echo "[W] No registered config for $bench.$scen.$MATCHED for WorkloadSetting($cv)"
  exit 0
fi

# code/main.py dispatch_action: every action starts with auditing.cleanup(), which deletes
# audit.config and the verification files from the working directory (code/common/auditing.py)
rm -f audit.config verify_accuracy.txt verify_performance.txt mlperf_log_accuracy_baseline.json accuracy.txt predictions.json

# code/common/harness.py: engines live in ./build/engines/<system_id>/<benchmark>/<Scenario>/
engine_dir=build/engines/$MATCHED/$bench/$scen
engine=$engine_dir/$bench-$scen-gpu-int8.$cv.plan
case "$action" in
  generate_engines)
    # code/actionhandler/generate_engines.py: always builds (the reuse branch is `if False`)
    echo "generate_engines $bench $scen $cv $MATCHED" >> $calls
    [ "$MODE" = hang_engines ] && { echo "[I] building engines (hanging)"; sleep 3600; }
    mkdir -p "$engine_dir"
    echo "engine for $MATCHED $bench $scen $cv" > "$engine"
    echo "[I] Finished building engines for $bench $scen"
    exit 0 ;;
  run_harness) log_dir=$LOG_DIR ;;
  run_audit_harness)
    # code/actionhandler/run_audit.py: log_dir = build/compliance_logs/<TEST>; auditing.load
    # copies build/inference/compliance/nvidia/<TEST>/<benchmark>/audit.config to ./audit.config
    log_dir=build/compliance_logs/$audit
    src_cfg=build/inference/compliance/nvidia/$audit/$bench/audit.config
    [ -f "$src_cfg" ] || src_cfg=build/inference/compliance/nvidia/$audit/audit.config
    [ -f "$src_cfg" ] || { echo "FileNotFoundError: $src_cfg"; exit 1; }
    cp "$src_cfg" audit.config ;;
  *) echo "[I] Action $action is not currently supported"; exit 0 ;;
esac
# harness.py enumerate_engines -> check_file_exists: no engine, no run
if [ ! -f "$engine" ]; then
  echo "RuntimeError: File $engine does not exist."; exit 1
fi
echo "run_harness $bench $scen $mode $MATCHED" >> $calls
echo "[I] Running $bench $scen $mode (config_ver=$cv, quick=$quick)"
case "$MODE" in
  hang) echo "[I] harness is hanging"; sleep 3600; exit 0 ;;
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
  wrong_dir) log_dir=/work/build/logs/elsewhere ;;
esac
full="$bench-99"
case "$cv" in *high_accuracy) full="$bench-99.9" ;; esac
# harness.py get_full_log_dir: <log_dir>/<system_id>_TRT/<benchmark_full>/<Scenario>
system_name="${MATCHED}_TRT"
out="$log_dir/$system_name/$full/$scen"
mkdir -p "$out"
# logs of a real LoadGen run: <Scenario>/, or <Scenario>-accuracy/ (AccuracyOnly) and
# <Scenario>-audit/ (an audit run) when given
src=/work/standin-logs/"$scen"
if [ "$mode" = AccuracyOnly ] && [ -d "$src-accuracy" ]; then src="$src-accuracy"; fi
if [ -f audit.config ]; then
  echo "[I] Found audit.config: compliance audit run"
  echo "audit $bench $scen" >> $calls
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
# code/actionhandler/run_harness.py: result_validity is LoadGen's own; only the summary
# string says INVALID for a run shorter than 600 s (_get_result_string)
summary_validity=$validity
if [ "$quick" = 1 ]; then summary_validity=INVALID; fi
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
  "config_name": "$MATCHED-custom_k_99_MaxP-$scen",
  "detected_system": "$DETECTED",
  "result_validity": "$validity",
  "$key": $value,
  "scenario": "$scen",
  "scenario_key": "$key",
  "summary_string": "$key: $value, Result is $summary_validity",
  "system_name": "$system_name",
  "tensorrt_version": "10.2.0",
  "test_mode": "$mode"
}
JSON
echo "[I] result: $key=$value $summary_validity"
[ "$action" = run_audit_harness ] && rm -f audit.config
exit 0
