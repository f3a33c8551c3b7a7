#!/usr/bin/env python3
"""FAKE NVIDIA harness binary (GPU-bound), installed as ``build/bin/harness_bert`` and
``build/bin/harness_3dunet`` of a real v4.1 ``closed/NVIDIA`` checkout.

NVIDIA's run_harness (code/common/harness.py:316-341) runs the C++ harness as
``<exe> --logfile_outdir="…" --logfile_prefix="mlperf_log_" --test_mode="PerformanceOnly"
--gpu_engines="<plan>" --mlperf_conf_path="build/loadgen-configs/…/mlperf.conf"
--user_conf_path="…/user.conf" … --scenario Offline --model bert`` (seen in a real run, see
docs/conformance.md) and then parses ``mlperf_log_detail.txt`` in ``logfile_outdir`` itself.
This stand-in does the harness's LoadGen part for real: it reads the same two config files
into the real ``mlperf_loadgen`` TestSettings and runs LoadGen against a SUT that answers
every sample at once (no GPU, no model), so real LoadGen logs come out where NVIDIA's code
reads them. Like the real harness it fails when an engine it is given does not exist.

Kit-only overrides, to keep runs small on a busy machine (printed when used):
``REALNV_LG_MIN_DURATION_MS`` replaces the min duration (``--test_run`` gives 60000 ms),
``REALNV_LG_MAX_QPS`` caps ``offline_expected_qps`` / ``server_target_qps``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

#: dataset sizes (total sample counts the real harness's QSL reports): SQuAD v1.1 dev, KiTS19
TOTAL_SAMPLES = {"bert": 10833, "3d-unet": 43}
SCENARIOS = ("Offline", "Server", "SingleStream", "MultiStream")


def parse_flags(argv: list[str]) -> dict[str, str]:
    """gflags-style ``--k=v`` and ``--k v`` (NVIDIA appends ``--scenario X --model Y``)."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise SystemExit(f"fake harness: unexpected argument {arg!r}")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value = argv[i + 1]
                i += 1
            else:
                value = "true"
        flags[key] = value
        i += 1
    return flags


def seeds(conf: Path, model: str, scenario: str) -> dict[str, int]:
    """``*_rng_seed`` values of an mlperf.conf that apply to ``model`` / ``scenario``."""
    found: dict[str, int] = {}
    for line in conf.read_text().splitlines():
        key, eq, value = line.split("#", 1)[0].partition("=")
        parts = key.strip().split(".")
        seed = eq and len(parts) == 3 and parts[2].endswith("rng_seed")
        if seed and parts[0] in (model, "*") and parts[1] in (scenario, "*"):
            found[parts[2]] = int(value.strip())
    return found


def settings_for(lg: Any, flags: dict[str, str]) -> tuple[Any, list[str]]:
    """TestSettings from the harness's mlperf.conf and user.conf, then the kit's overrides."""
    model, scenario = flags["model"], flags["scenario"]
    if scenario not in SCENARIOS:
        raise SystemExit(f"fake harness: unknown --scenario {scenario!r}; valid: {SCENARIOS}")
    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, scenario)
    modes = {"PerformanceOnly": "PerformanceOnly", "AccuracyOnly": "AccuracyOnly"}
    mode = flags.get("test_mode", "PerformanceOnly")
    if mode not in modes:
        raise SystemExit(f"fake harness: unknown --test_mode {mode!r}; valid: {sorted(modes)}")
    settings.mode = getattr(lg.TestMode, modes[mode])
    # LoadGen >= 5 has mlperf.conf built in and FromConfig(path, ..., 0) ignores the path: its
    # defaults first, then NVIDIA's v4.1 mlperf.conf and user.conf as config files (conf_type
    # 1), then the v4.1 file's RNG seeds, which LoadGen takes only from its own mlperf.conf
    settings.FromConfig("", model, scenario, 0)
    for key in ("mlperf_conf_path", "user_conf_path"):
        path = flags.get(key)
        if path is None or not Path(path).is_file():
            raise SystemExit(f"fake harness: --{key} {path!r} is not a file")
        if settings.FromConfig(path, model, scenario, 1) != 0:
            raise SystemExit(f"fake harness: LoadGen rejected {path}")
    for attr, value in seeds(Path(flags["mlperf_conf_path"]), model, scenario).items():
        setattr(settings, attr, value)
    notes: list[str] = []
    min_ms = os.environ.get("REALNV_LG_MIN_DURATION_MS")
    if min_ms:
        settings.min_duration_ms = int(min_ms)
        notes.append(f"min_duration_ms={min_ms}")
    max_qps = os.environ.get("REALNV_LG_MAX_QPS")
    if max_qps:
        for attr in ("offline_expected_qps", "server_target_qps"):
            if getattr(settings, attr) > float(max_qps):
                setattr(settings, attr, float(max_qps))
                notes.append(f"{attr}={max_qps}")
    return settings, notes


def main(argv: list[str]) -> int:
    flags = parse_flags(argv)
    for engine in filter(None, flags.get("gpu_engines", "").split(",")):
        if not Path(engine).is_file():
            print(f"fake harness: engine {engine} does not exist", file=sys.stderr)
            return 1
    import mlperf_loadgen as lg

    settings, notes = settings_for(lg, flags)
    if notes:
        print("REALNV fake harness: kit LoadGen overrides " + ", ".join(notes), flush=True)
    model = flags["model"]
    total = TOTAL_SAMPLES.get(model)
    if total is None:
        raise SystemExit(f"fake harness: unknown --model {model!r}; valid: {sorted(TOTAL_SAMPLES)}")
    perf_count = min(int(flags.get("performance_sample_count", total)) or total, total)

    # answers take as long as the settings' own throughput says (an Offline query of N samples:
    # N / offline_expected_qps seconds), so the run lasts its min duration as on the GPU
    offline_qps = float(settings.offline_expected_qps) if flags["scenario"] == "Offline" else 0.0

    def issue(samples: list[Any]) -> None:
        if offline_qps > 0:  # one query, answered synchronously (LoadGen waits for it)
            time.sleep(len(samples) / offline_qps)
        lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in samples])

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(total, perf_count, lambda _s: None, lambda _s: None)
    out = lg.LogOutputSettings()
    out.outdir = flags["logfile_outdir"]
    out.prefix = flags.get("logfile_prefix", "mlperf_log_")
    out.copy_summary_to_stdout = True
    log = lg.LogSettings()
    log.log_output = out
    Path(out.outdir).mkdir(parents=True, exist_ok=True)
    lg.StartTestWithLogSettings(sut, qsl, settings, log)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    print(f"REALNV fake harness: LoadGen logs in {out.outdir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
