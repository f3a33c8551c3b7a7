"""Run history and its statistics: paired A/B ratios, change points (pytest-free)."""
