#!/bin/sh
# Stand-in for the harness's Python entry points, tests only (busybox sh, no Python):
#   python3 -m scripts.get_system_id      -> scripts/get_system_id.py: prints MATCHED_SYSTEM
#   python3 -m code.main RUN_ARGS --action=generate_engines|run_harness|run_audit_harness
#   python3 -c <pytest-mlperf's probe> <requests JSON>  (backends/nvidia/resolve.py: code.main's
#                                          config resolution per request, nothing dispatched)
# Every behaviour here was SEEN running NVIDIA's real v4.1 Python (closed/NVIDIA of
# mlcommons/inference_results_v4.1 @ 198fc467, on the nvidia-real-harness kit's machine
# profiles; tests/conformance/test_level1.py replays the backend against it); each names the
# real file:line. The hardware comes from /work/standin.conf: GPU_NAME (as NVML names it),
# GPU_COUNT, CPU_NAME (lscpu's "Model name").
MODE=ok
VERSION=4.1
GPU_NAME="STANDIN GPU"
GPU_COUNT=1
CPU_NAME="AMD EPYC 7V12 64-Core Processor"
NO_CONFIGS=""
[ -f /work/standin.conf ] && . /work/standin.conf
calls=/work/standin-calls.log
case "$1" in
  -m) module=$2; shift 2 ;;
  -c)
    # the harness's own TensorRT check (Makefile:218: python -c "import tensorrt;
    # print(tensorrt.__version__)"): TENSORRT (standin.conf) is the version installed; unset,
    # the module is missing, as Python says it (seen: a python3 without it, exit 1)
    case "$2" in *"import tensorrt"*)
      if [ -n "${TENSORRT:-}" ]; then echo "$TENSORRT"; exit 0; fi
      echo "Traceback (most recent call last):"
      echo '  File "<string>", line 1, in <module>'
      echo "ModuleNotFoundError: No module named 'tensorrt'"
      exit 1 ;;
    esac
    module=probe; shift 2 ;;  # the script itself is pytest-mlperf's, not the harness's
  *) echo "python3: stand-in runs only -m modules and the probe" >&2; exit 2 ;;
esac

# -- code/common/systems/system_list.py + known_hardware.py --------------------------------
# Built-in systems: KnownSystem member|NVML GPU name|count|CPU rule|get_id(). The H100/H200
# SXM systems pin the host CPU to an Intel Xeon Platinum 8480C (system_list.py add_systems(...,
# KnownCPU.Intel_Xeon_Platinum_8480C)); A100_SXM4_40GB allows KnownCPU.x86_64_Generic (seen:
# the Azure profile's AMD EPYC 7V12 matches). get_id() (code/common/systems/systems.py:368) is
# the system_id the entry was added with, seen: H200-SXM-141GBx8, DGX-A100_A100-SXM4-40GBx8.
# STANDIN_SYSTEM is the stand-in's own test system (no such entry in the real list).
BUILTIN="A100_SXM4_40GBx1|NVIDIA A100-SXM4-40GB|1|x86|DGX-A100_A100-SXM4-40GBx1
A100_SXM4_40GBx8|NVIDIA A100-SXM4-40GB|8|x86|DGX-A100_A100-SXM4-40GBx8
H100_SXM_80GBx1|NVIDIA H100 80GB HBM3|1|8480C|H100-SXM-80GBx1
H100_SXM_80GBx8|NVIDIA H100 80GB HBM3|8|8480C|H100-SXM-80GBx8
H200_SXM_141GBx1|NVIDIA H200|1|8480C|H200-SXM-141GBx1
H200_SXM_141GBx8|NVIDIA H200|8|8480C|H200-SXM-141GBx8
STANDIN_SYSTEM|STANDIN GPU|1|any|STANDIN-GPUx1"

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

# system_list.py:162-173: with MLPINF_CUSTOM_DEFINITION_PATH set, custom systems come from
# <path>/custom_systems/custom_list.py, looked up with find_spec("custom_systems.custom_list"):
# seen, without a custom_systems/ there every Python entry point exits 1 with
# "ModuleNotFoundError: No module named 'custom_systems'" (a directory without custom_list.py
# is no error: no custom systems). Unset: code/common/systems/custom_list.py (absent in v4.1).
CUSTOM_DIR=""
if [ -n "${MLPINF_CUSTOM_DEFINITION_PATH+x}" ]; then
  if [ ! -e "$MLPINF_CUSTOM_DEFINITION_PATH" ]; then
    echo "FileNotFoundError: MLPINF_CUSTOM_DEFINITION_PATH $MLPINF_CUSTOM_DEFINITION_PATH does not exist."
    exit 1
  fi
  CUSTOM_DIR=$MLPINF_CUSTOM_DEFINITION_PATH
  if [ ! -d "$CUSTOM_DIR/custom_systems" ]; then
    echo "ModuleNotFoundError: No module named 'custom_systems'"; exit 1
  fi
  custom_list=$CUSTOM_DIR/custom_systems/custom_list.py
else
  custom_list=/work/code/common/systems/custom_list.py
fi
CUSTOM=""
if [ -f "$custom_list" ]; then
  # the stub (scripts/custom_systems/stubs/custom_system.py.stub) imports these; without them
  # the module fails at import time, i.e. on every `make` target that runs Python
  if grep -q "^custom_systems\[" "$custom_list"; then
    for need in "code.common.systems.systems import SystemConfiguration" "code.common.systems.known_hardware import" "code.common.systems.cpu import"; do
      if ! grep -q "from $need" "$custom_list"; then
        echo "NameError: name '${need##* }' is not defined ($custom_list)"; exit 1
      fi
    done
  fi
  while IFS= read -r line; do
    id=$(echo "$line" | sed -n "s/^custom_systems\[['\"]\([A-Za-z0-9_]*\)['\"]\] *= *SystemConfiguration(.*/\1/p")
    [ -n "$id" ] || continue
    member=$(echo "$line" | sed -n 's/.*KnownGPU\.\([A-Za-z0-9_]*\)\.value: *\([0-9]*\).*/\1/p')
    count=$(echo "$line" | sed -n 's/.*KnownGPU\.\([A-Za-z0-9_]*\)\.value: *\([0-9]*\).*/\2/p')
    cpu=$(echo "$line" | sed -n "s/.*CPU(name=['\"]\([^'\"]*\)['\"].*/\1/p")
    gpu=$(known_gpu_name "$member") || { echo "AttributeError: KnownGPU has no member '$member'"; exit 1; }
    # a custom system's get_id() is the system_id it was written with (seen: the custom id)
    CUSTOM="$CUSTOM$id|$gpu|$count|$cpu|$id
"
  done < "$custom_list"
fi

# MatchableEnum.get_first_match: built-in systems first, then the custom ones
MATCHED=""; SYSTEM_ID=""
while IFS='|' read -r id gpu count rule sid; do
  [ -n "$id" ] || continue
  if [ "$gpu" = "$GPU_NAME" ] && [ "$count" = "$GPU_COUNT" ] && cpu_ok "$rule"; then MATCHED=$id; SYSTEM_ID=$sid; break; fi
done <<LIST
$BUILTIN
$CUSTOM
LIST
DETECTED="SystemConfiguration(cpu='$CPU_NAME', gpus={'$GPU_NAME': $GPU_COUNT})"

if [ "$module" = scripts.get_system_id ]; then
  # scripts/get_system_id.py: print(MATCHED_SYSTEM); seen: KnownSystem.H200_SXM_141GBx8, and
  # "None" for 8x H100 with AMD EPYC 9654 CPUs
  if [ -n "$MATCHED" ]; then echo "KnownSystem.$MATCHED"; else echo "None"; fi
  exit 0
fi
[ "$module" = code.main ] || [ "$module" = probe ] || { echo "No module named $module"; exit 1; }

# configs/<benchmark>/<Scenario>/__init__.py: the built-in registrations (KnownSystem ids),
# both accuracy targets each; seen resolving (tests/conformance): no 8-GPU SingleStream config
# (bert, 3d-unet), no A100_SXM4_40GBx8 bert Server; 3d-unet Offline for A100_SXM4_40GBx8
# (configs.3d-unet.Offline.A100_SXM4_40GBx8) and H200_SXM_141GBx8.
# NO_CONFIGS (standin.conf, e.g. "3d-unet/SingleStream"): a checkout without that pair's config
# module, so nothing at all is registered for it (the case code/main.py:107 skips silently).
builtin_configs() {
  case " $NO_CONFIGS " in *" $1/$2 "*) return ;; esac
  case "$1/$2" in
    bert/Offline|3d-unet/Offline) echo "A100_SXM4_40GBx1 A100_SXM4_40GBx8 H100_SXM_80GBx1 H100_SXM_80GBx8 H200_SXM_141GBx1 H200_SXM_141GBx8 STANDIN_SYSTEM" ;;
    bert/Server) echo "H100_SXM_80GBx1 H100_SXM_80GBx8 H200_SXM_141GBx1 H200_SXM_141GBx8 STANDIN_SYSTEM" ;;
    bert/SingleStream|3d-unet/SingleStream) echo "A100_SXM4_40GBx1 H100_SXM_80GBx1 STANDIN_SYSTEM" ;;
  esac
}

# code/common/constants.py config_ver_to_workload_setting + WorkloadSetting.shortname():
# seen: default -> custom_k_99_MaxP, high_accuracy -> custom_k_99_9_MaxP
shortname() {
  h=custom; t=k_99
  case "$1" in *triton*) h=triton ;; esac
  case "$1" in *high_accuracy*) t=k_99_9 ;; esac
  echo "${h}_${t}_MaxP"
}

# Resolve one benchmark/scenario/config_ver the way code.main does; sets STATUS (ok, none:
# "No registered config", silent: nothing registered for the pair, error), CLASS and MSG.
resolve_config() {
  bench=$1; scen=$2; cv=$3; custom=$4
  STATUS=ok; CLASS=""; MSG=""
  target=k_99
  case "$cv" in *high_accuracy) target=k_99_9 ;; esac
  case "$cv" in triton*) STATUS=none ;; esac
  base_loaded=1; custom_cfg=""
  # configs/configuration.py:118-136: with the variable set ONLY
  # custom_configs/<b>/<S>/custom.py is imported (the built-in configs come in only through
  # its own imports); seen: without that file nothing is registered for the pair
  if [ -n "$custom" ]; then
    base_loaded=0
    custom_cfg=$custom/custom_configs/$bench/$scen/custom.py
    [ -f "$custom_cfg" ] || custom_cfg=""
  fi
  registered=""
  if [ -n "$custom_cfg" ]; then
    # seen: `from configs.3d-unet.Offline import *` is a SyntaxError (no identifier); the
    # harness's own modules are imported with importlib.import_module
    if grep -q "^from configs\.[a-z0-9]*-" "$custom_cfg"; then
      STATUS=error; MSG="SyntaxError: invalid syntax ($custom_cfg)"; return
    fi
    if grep -q "import_module(['\"]configs\.$bench\.$scen['\"])" "$custom_cfg" || grep -q "^from configs\.$bench\.$scen import \*" "$custom_cfg"; then
      base_loaded=1
    elif grep -q "ConfigRegistry" "$custom_cfg"; then
      STATUS=error; MSG="NameError: name 'ConfigRegistry' is not defined ($custom_cfg)"; return
    fi
  fi
  if [ "$base_loaded" = 1 ]; then registered=$(builtin_configs "$bench" "$scen"); fi
  # class names, seen: configs.bert.Offline.H200_SXM_141GBx8(_HighAccuracy for 99.9 %)
  suffix=""
  [ "$target" = k_99_9 ] && suffix=_HighAccuracy
  mine=""
  for id in $registered; do [ "$id" = "$MATCHED" ] && mine="configs.$bench.$scen.$id$suffix"; done
  if [ -n "$custom_cfg" ]; then
    ids=$(sed -n 's/^ *system *= *KnownSystem\.\([A-Za-z0-9_]*\).*/\1/p' "$custom_cfg" | sort -u)
    for id in $ids; do
      if ! printf '%s\n%s\n' "$BUILTIN" "$CUSTOM" | grep -q "^$id|"; then
        STATUS=error; MSG="AttributeError: KnownSystem has no member '$id' ($custom_cfg)"; return
      fi
      registered="$registered $id"
      [ "$id" = "$MATCHED" ] || continue
      # ConfigRegistry.register: a second registration of benchmark/scenario/system/workload
      if [ -n "$mine" ] && grep -q "AccuracyTarget\.$target," "$custom_cfg"; then
        STATUS=error; MSG="KeyError: 'Config for $bench/$scen/KnownSystem.$id is already registered.'"; return
      fi
      if grep -q "AccuracyTarget\.$target," "$custom_cfg"; then
        mine="custom_configs.$bench.$scen.custom.$id$suffix"
      fi
    done
  fi
  if [ -z "$(echo $registered)" ]; then
    # code/main.py:107: available_workload_settings is None -> `continue`, no message, exit 0
    STATUS=silent; return
  fi
  if [ "$STATUS" = none ] || [ -z "$mine" ]; then
    # code/main.py:134: logging.warning, then the next workload setting; exit 0
    STATUS=none
    MSG="No registered config for $bench.$scen.$SYSTEM_ID for WorkloadSetting($(shortname "$cv"))"
    return
  fi
  CLASS=$mine
}

if [ "$module" = probe ]; then
  # pytest-mlperf's probe (resolve.py): the detection line, then one line per request
  if [ -z "$MATCHED" ]; then
    echo "PYTEST_MLPERF_DETECTED {\"matched\": null, \"detected\": \"$DETECTED\"}"; exit 0
  fi
  echo "PYTEST_MLPERF_DETECTED {\"matched\": \"KnownSystem.$MATCHED\", \"detected\": \"$DETECTED\"}"
  echo "$1" | sed 's/^\[//; s/\]$//; s/}, {/}\n{/g' | while IFS= read -r req; do
    get() { echo "$req" | sed -n "s/.*\"$1\": \"\([^\"]*\)\".*/\1/p"; }
    b=$(get benchmark); s=$(get scenario); cv=$(get config_ver); action=$(get action)
    custom=$(get custom)
    argv=$(echo "$req" | sed -n 's/.*"argv": \[\(.*\)\].*/\1/p' | sed 's/[",]/ /g')
    mode=""; quick=false
    for a in $argv; do
      case "$a" in --test_mode=*) mode=${a#--test_mode=} ;; --test_run) quick=true ;; esac
    done
    resolve_config "$b" "$s" "$cv" "$custom"
    head="\"benchmark\": \"$b\", \"scenario\": \"$s\", \"config_ver\": \"$cv\", \"action\": \"$action\""
    case "$STATUS" in
      ok)
        conf="\"system_id\": \"$SYSTEM_ID\", \"config_ver\": \"$(shortname "$cv")\""
        [ "$action" = run_harness ] && conf="$conf, \"test_mode\": \"${mode:-PerformanceOnly}\", \"test_run\": $quick"
        echo "PYTEST_MLPERF_PROBE {$head, \"registered\": 1, \"warnings\": [], \"dispatched\": [{$conf}], \"classes\": [\"$CLASS\"]}" ;;
      none) echo "PYTEST_MLPERF_PROBE {$head, \"registered\": 1, \"warnings\": [\"$MSG\"], \"dispatched\": [], \"classes\": [null]}" ;;
      silent) echo "PYTEST_MLPERF_PROBE {$head, \"registered\": null, \"warnings\": [], \"dispatched\": [], \"classes\": []}" ;;
      error) echo "PYTEST_MLPERF_PROBE {$head, \"registered\": null, \"warnings\": [], \"dispatched\": [], \"classes\": [], \"error\": \"$MSG\"}" ;;
    esac
  done
  exit 0
fi

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
    --fast)  # v4.0 had --fast; v4.1's parse_known_args (code/main.py:219) ignores it silently
      if [ "$VERSION" = 4.0 ]; then quick=1; fi ;;
    *)
      if [ "$VERSION" = 4.0 ]; then echo "main.py: error: unrecognized arguments: $a"; exit 2; fi ;;
  esac
done

resolve_config "$bench" "$scen" "$cv" "$CUSTOM_DIR"
case "$STATUS" in
  error) echo "$MSG"; exit 1 ;;
  silent) exit 0 ;;  # code/main.py:107: skipped without a word
  none) echo "[W] $MSG"; exit 0 ;;
esac

# code/main.py dispatch_action: every action starts with auditing.cleanup(), which deletes
# audit.config and the verification files from the working directory (code/common/auditing.py)
rm -f audit.config verify_accuracy.txt verify_performance.txt mlperf_log_accuracy_baseline.json accuracy.txt predictions.json

# Engines: build/engines/<system_id>/<benchmark>/<Scenario>/<name>-<Scenario>-<device>-
# <precision>_S_..._B_..._P_..._vs.<config_ver>.plan (code/bert/tensorrt/builder.py:206, found
# again by code/bert/tensorrt/harness.py:55); seen in the effective config code.main hands
# its handler: system_id = get_id() (H200-SXM-141GBx8) and config_ver = the workload short
# name (custom_k_99_MaxP; code/common/fields.py:1246-1265). The backend never predicts the
# name: it looks for what the build wrote.
tag=$(shortname "$cv")
precision=int8
case "$bench/$tag" in bert/*k_99_9*) precision=fp16 ;; esac
engine_dir=build/engines/$SYSTEM_ID/$bench/$scen
engine=$engine_dir/$bench-$scen-gpu-${precision}_S_384_B_8_P_1_vs.$tag.plan
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
# (not yet seen running: the kit's level 2 checks it)
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
  "config_name": "${SYSTEM_ID}_${bench}_$scen",
  "detected_system": "$DETECTED",
  "result_validity": "$validity",
  "$key": $value,
  "scenario": "$scen",
  "scenario_key": "$key",
  "summary_string": "$key: $value, Result is $summary_validity",
  "system_name": "$system_name",
  "tensorrt_version": "${TENSORRT:-10.2.0}",
  "test_mode": "$mode"
}
JSON
echo "[I] result: $key=$value $summary_validity"
[ "$action" = run_audit_harness ] && rm -f audit.config
exit 0
