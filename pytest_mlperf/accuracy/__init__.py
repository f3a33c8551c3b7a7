"""Accuracy of LoadGen accuracy logs: SQuAD v1.1 F1/EM (bert) and KiTS19 DICE (3d-unet).

Backend-neutral: :func:`evaluate_log` takes ``mlperf_log_accuracy.json`` and a data set
and returns :class:`AccuracyFigures`; nothing here imports pytest.
"""

from pytest_mlperf.accuracy.figures import AccuracyFigures, DatasetError

__all__ = ["AccuracyFigures", "DatasetError", "evaluate_log"]


def __getattr__(name: str) -> object:
    """``evaluate_log`` is imported lazily (it pulls in the backends' request types)."""
    if name == "evaluate_log":
        from pytest_mlperf.accuracy.evaluate import evaluate_log

        return evaluate_log
    raise AttributeError(name)
