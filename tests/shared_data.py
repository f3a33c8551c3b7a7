"""Where the tests find published MLPerf material: ``../shared/data`` beside the checkout.

The project keeps no copy of fetched material; CI has the shared data beside the checkout
(``<checkout>/../shared/data``), as do the worktrees here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS_V41 = SHARED_DATA / "mlperf-inference-results-v4.1"

#: published LoadGen logs (mlcommons/inference_results_v4.1 at 198fc467) the parser tests use
PUBLISHED_LOGS = {
    "nvidia-h200-retinanet-server": RESULTS_V41
    / "closed/NVIDIA/results/H200-SXM-141GBx8_TRT/retinanet/Server/performance/run_1",
    "nvidia-h200-3dunet-offline": RESULTS_V41
    / "closed/NVIDIA/results/H200-SXM-141GBx8_TRT/3d-unet-99/Offline/performance/run_1",
    "lenovo-l4-retinanet-multistream": RESULTS_V41
    / "closed/Lenovo/results/Lenovo_2xL4_TRT/retinanet/MultiStream/performance/run_1",
    "lenovo-l40s-3dunet-singlestream": RESULTS_V41
    / "closed/Lenovo/results/Lenovo_2xL40S_TRT/3d-unet-99/SingleStream/performance/run_1",
}


def require_shared(path: Path = SHARED_DATA) -> Path:
    """``path``, or skip (fail in CI, where the shared data must be there) when it is missing."""
    if not path.exists():
        message = f"the shared data is not at {path} (expected beside the checkout: ../shared/data)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
