"""``--mlperf-ab`` per backend: the keys a backend declares (its class's ``ab_keys``) and
what identifies a side once its backend is prepared (its ``ab_identity()``). No pytest."""

from __future__ import annotations

from typing import Any

from pytest_mlperf.backends.variants import AbKey


def backend_class(name: str) -> type | None:
    """The built-in backend class called ``name`` (imported only when asked); None for a
    backend a plugin makes (it declares no A/B keys here)."""
    if name == "reference":
        from pytest_mlperf.backends.reference.backend import ReferenceBackend

        return ReferenceBackend
    if name == "nvidia":
        from pytest_mlperf.backends.nvidia.backend import NvidiaBackend

        return NvidiaBackend
    return None


def ab_keys(backend: str) -> tuple[AbKey, ...]:
    """The keys a side may set on ``backend`` (none: that backend has no A/B variants)."""
    return tuple(getattr(backend_class(backend), "ab_keys", ()))


def ab_identity(backend: Any) -> dict[str, Any]:
    """What the prepared ``backend`` says it is (image, checkout, threads...): its
    ``ab_identity()``, else nothing."""
    identity = getattr(backend, "ab_identity", None)
    return dict(identity()) if callable(identity) else {}
