"""Ask the harness itself which config each (benchmark, scenario, config_ver) resolves to.

``PROBE`` runs in the harness container with the harness's own Python (``python3 -c PROBE
REQUESTS``, working directory the checkout): it imports NVIDIA's ``code.main`` (system
detection at import, ``code/common/systems/system_list.py``), then calls its ``main()`` per
request with the RUN_ARGS the backend will pass, so argparse (``parse_known_args``), config
loading (``configs/configuration.py``), validation and field filtering
(``code/common/fields.py``: ``get_effective_values``, ``apply_helper_and_legacy_fields``)
are the harness's. Only ``dispatch_action`` is replaced: it records the effective config
instead of building or running anything. Each request prints one ``PYTEST_MLPERF_PROBE``
JSON line; the whole probe takes seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: A request's outcome: the harness dispatched a config; it warned "No registered config";
#: it registered nothing at all for the pair and skipped it silently (``code/main.py``: the
#: ``available_workload_settings(...) is None: continue`` branch); or it raised.
RESOLVED, NO_CONFIG, SILENT, ERROR = "resolved", "no_config", "silent", "error"
MARK = "PYTEST_MLPERF_PROBE "
DETECT_MARK = "PYTEST_MLPERF_DETECTED "
#: what the probe reports of the effective config (keys of code/common/fields.py)
KEYS = (
    "system_id",
    "config_name",
    "config_ver",
    "accuracy_level",
    "precision",
    "gpu_batch_size",
    "offline_expected_qps",
    "server_target_qps",
    "single_stream_expected_latency_ns",
    "test_mode",
    "test_run",
)
CUSTOM_VAR = "MLPINF_CUSTOM_DEFINITION_PATH"

PROBE = r"""
import json, logging, os, sys, traceback
MARK, DETECT_MARK, VAR = "PYTEST_MLPERF_PROBE ", "PYTEST_MLPERF_DETECTED ", "MLPINF_CUSTOM_DEFINITION_PATH"
KEYS = __KEYS__
requests = json.loads(sys.argv[1])
sys.argv[0:] = ["code/main.py"]
warnings = []
class Catch(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())
logging.getLogger().addHandler(Catch(level=logging.WARNING))
import code.main as m
print(DETECT_MARK + json.dumps({"matched": None if m.MATCHED_SYSTEM is None else str(m.MATCHED_SYSTEM),
                                "detected": str(m.DETECTED_SYSTEM)}), flush=True)
if m.MATCHED_SYSTEM is None:
    sys.exit(0)
cur = {}
def text(v):
    if isinstance(v, dict):
        return {str(getattr(k, "valstr", lambda: k)()): text(x) for k, x in v.items()}
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return v.valstr() if hasattr(v, "valstr") else str(v)
def dispatch(main_args, conf, ws):
    action = m.Action.get_match(main_args["action"])
    eff = m.get_effective_values(conf, action, ws)
    eff = m.apply_helper_and_legacy_fields(eff, ws, system_name_override=main_args.get("system_name", None))
    cur["dispatched"].append({k: text(eff.get(k)) for k in KEYS if k in eff})
real_get = m.ConfigRegistry.get
def get(*a, **k):
    found = real_get(*a, **k)
    cur["classes"].append(None if found is None else found.__module__ + "." + found.__qualname__)
    return found
m.dispatch_action = dispatch
m.ConfigRegistry.get = get
for req in requests:
    cur = {"dispatched": [], "classes": []}
    del warnings[:]
    if req.get("custom"):
        os.environ[VAR] = req["custom"]
    else:
        os.environ.pop(VAR, None)
    out = dict(req)
    try:
        sys.argv[1:] = req["argv"]  # code/common/fields.py get_effective_values parses sys.argv too
        m.main(m.parse_main_args(), m.DETECTED_SYSTEM)
    except BaseException as exc:
        out["error"] = (traceback.format_exception_only(type(exc), exc)[-1].strip()
                        + " | " + "".join(traceback.format_tb(exc.__traceback__)[-1:]).strip())
    b, s = m.Benchmark.get_match(req["benchmark"]), m.Scenario.get_match(req["scenario"])
    avail = m.ConfigRegistry.available_workload_settings(b, s)
    out["registered"] = None if avail is None else len(avail)
    out["warnings"] = [w for w in warnings if "No registered config" in w]
    out.update(cur)
    print(MARK + json.dumps(out, default=str), flush=True)
""".replace("__KEYS__", repr(KEYS))


@dataclass
class Resolution:
    """What the harness resolved one (benchmark, scenario, config_ver, action) to."""

    benchmark: str
    scenario: str
    config_ver: str
    action: str
    status: str
    message: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    config_class: str | None = None
    #: how many systems the harness registered configs for, for this pair (None: none at all)
    registered: int | None = None

    @property
    def generated(self) -> bool:
        """The config came from a generated ``custom_configs/.../custom.py``."""
        return bool(self.config_class and self.config_class.startswith("custom_configs."))


def probe_argv(requests: Sequence[Mapping[str, Any]]) -> list[str]:
    """``python3 -c PROBE <requests as JSON>``."""
    return ["python3", "-c", PROBE, json.dumps(list(requests))]


def request(
    benchmark: str, scenario: str, config_ver: str, args: str, action: str, custom: str | None
) -> dict[str, Any]:
    """One probe request: the RUN_ARGS the backend will pass, plus the action."""
    return {
        "benchmark": benchmark,
        "scenario": scenario,
        "config_ver": config_ver,
        "action": action,
        "custom": custom,
        "argv": [*args.split(), f"--action={action}"],
    }


@dataclass
class ProbeOutput:
    """The probe's answer: what the harness detected, and one resolution per request."""

    matched: str | None
    detected: str
    resolutions: list[Resolution]


def parse_probe(lines: Sequence[str]) -> ProbeOutput | None:
    """The probe's lines (None when it never printed its detection: it failed at import)."""
    matched: str | None = None
    detected = ""
    seen = False
    resolutions = []
    for line in lines:
        if line.startswith(DETECT_MARK):
            data = json.loads(line[len(DETECT_MARK) :])
            matched, detected, seen = data.get("matched"), str(data.get("detected")), True
        elif line.startswith(MARK):
            resolutions.append(_resolution(json.loads(line[len(MARK) :])))
    return ProbeOutput(matched, detected, resolutions) if seen else None


def _resolution(data: Mapping[str, Any]) -> Resolution:
    dispatched = data.get("dispatched") or []
    classes = [c for c in data.get("classes") or [] if c]
    base: dict[str, Any] = {
        "benchmark": str(data["benchmark"]),
        "scenario": str(data["scenario"]),
        "config_ver": str(data["config_ver"]),
        "action": str(data["action"]),
        "registered": data.get("registered"),
    }
    if data.get("error"):
        return Resolution(**base, status=ERROR, message=str(data["error"]))
    if dispatched:
        return Resolution(
            **base,
            status=RESOLVED,
            config=dict(dispatched[0]),
            config_class=classes[0] if classes else None,
        )
    if data.get("warnings"):
        return Resolution(**base, status=NO_CONFIG, message=str(data["warnings"][0]))
    return Resolution(
        **base,
        status=SILENT,
        message=(
            f"the harness registered no config at all for {data['benchmark']} "
            f"{data['scenario']} and skipped it without a word (code/main.py: "
            "available_workload_settings is None)"
        ),
    )
