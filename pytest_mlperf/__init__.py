"""pytest-mlperf: MLPerf Inference benchmarks as pytest items."""

from __future__ import annotations

from pytest_mlperf.errors import ConfigError, DataError, MlperfError, ParseError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "MlperfError", "ParseError", "__version__"]
