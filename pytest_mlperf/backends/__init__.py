"""Backends run one benchmark×scenario×mode and leave LoadGen logs; they never judge."""

#: The backends built into pytest-mlperf (plugins add theirs through a hook).
BUILTIN_BACKENDS = ("reference", "nvidia")
