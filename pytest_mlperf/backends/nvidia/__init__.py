"""NVIDIA's MLPerf harness (closed/NVIDIA) in Docker on a GPU host."""

from pytest_mlperf.backends.nvidia.backend import NvidiaBackend, NvidiaSettings

__all__ = ["NvidiaBackend", "NvidiaSettings"]
