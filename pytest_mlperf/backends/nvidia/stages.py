"""The harness's setup steps (``make link_dirs``, ``download_*``, ``preprocess_data``,
``build``), each run once and marked done under the scratch path."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_mlperf.backends.base import Progress
from pytest_mlperf.backends.nvidia.container import HarnessContainer
from pytest_mlperf.errors import BackendError

#: Harness steps run once per checkout (``False``) or once per benchmark (``True``).
STAGES: tuple[tuple[str, bool], ...] = (
    ("link_dirs", False),
    ("download_data", True),
    ("download_model", True),
    ("preprocess_data", True),
    ("build", False),
)


def build_flags(config_vers: Sequence[str]) -> list[str]:
    """``make build`` variables: no TensorRT-LLM (bert and 3d-unet never use it, and
    ``Makefile.build`` defaults it on for SM 90/100); Triton only for a triton config_ver."""
    triton = any(cv.startswith("triton") for cv in config_vers)
    return ["BUILD_TRTLLM=0", f"BUILD_TRITON={1 if triton else 0}"]


def run_stages(
    container: HarnessContainer,
    families: Sequence[str],
    markers: str,
    checkout: str,
    config_vers: Sequence[str],
    progress: Progress,
    work_done: list[str],
) -> list[str]:
    """Run each step not yet marked done in ``markers`` (``checkout``: the suffix of the
    per-checkout steps' markers); each one run is added to ``work_done`` as it ends.
    Returns the steps that were already done."""
    done: list[str] = []
    for target, per_benchmark in STAGES:
        for family in families if per_benchmark else [None]:
            label = f"{target}-{family}" if family else target
            argv = ["make", target] + ([f"BENCHMARKS={family}"] if family else [])
            if target == "build":
                argv += build_flags(config_vers)
                if "BUILD_TRITON=1" in argv:  # a build with Triton is another step
                    label = "build-triton"
            # link_dirs and build write into this checkout's build/ (its own scratch dir)
            where = markers if per_benchmark else f"{markers}{checkout}"
            marker = f"{where}/{label}.done"
            if container.path_exists(marker):
                done.append(label)
                continue
            progress(f"harness step {label}: running {' '.join(argv)}")
            result = container.exec(argv, on_line=None)
            if result.exit_code != 0:
                raise BackendError(
                    f"harness step {label} failed with exit code {result.exit_code}:\n{result.tail_text()}"
                )
            container.exec(["sh", "-c", 'mkdir -p "$(dirname "$0")" && touch "$0"', marker])
            progress(f"harness step {label}: done in {result.seconds:.1f} s")
            work_done.append(f"ran make {label}")
    return done
