"""Level 2 image layer over the kit's ``stubs/sitecustomize.py`` (loaded first, unchanged).

``REALNV_MEMINFO=<file>``: NVIDIA's ``code/common/systems/memory.py:33`` reads
``/proc/meminfo`` (``get_mem_info``'s default argument); in a container it cannot be
bind-mounted by ``inprofile.sh``, so that default becomes the profile's file instead (the
DGX H200 system needs >= 30 GiB: ``code/common/systems/system_list.py:81``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

_KIT_SITE = os.environ.get("REALNV_KIT_SITE")
if _KIT_SITE:
    _spec = importlib.util.spec_from_file_location("_realnv_kit_sitecustomize", _KIT_SITE)
    if _spec is not None and _spec.loader is not None:
        _module = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_module)

_TARGET = "code.common.systems.memory"


class _MeminfoFinder(importlib.abc.MetaPathFinder):
    """After ``code.common.systems.memory`` loads, point ``get_mem_info`` at the profile file."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            module.get_mem_info.__defaults__ = (os.environ["REALNV_MEMINFO"],)
            # memory.py:56 MEM_INFO_SOURCE = InfoSource(get_mem_info) read it once already
            module.MEM_INFO_SOURCE.reset(hard=True)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get("REALNV_MEMINFO"):
    sys.meta_path.insert(0, _MeminfoFinder())
