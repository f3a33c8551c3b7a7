"""The embedded reference backend: real LoadGen driving small ONNX Runtime models on the CPU."""

from pytest_mlperf.backends.reference.backend import ReferenceBackend

__all__ = ["ReferenceBackend"]
