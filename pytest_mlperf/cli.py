"""``pytest-mlperf`` console script: ``parse DIR`` prints the result record of any LoadGen logs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_mlperf.errors import MlperfError
from pytest_mlperf.results.loadgen import parse_dir


def _parse(directory: Path) -> int:
    if not directory.is_dir():
        print(f"pytest-mlperf parse: {directory} is not a directory", file=sys.stderr)
        return 2
    try:
        parsed = parse_dir(directory)
    except (MlperfError, OSError) as exc:
        print(f"pytest-mlperf parse: {exc}", file=sys.stderr)
        return 1
    benchmark = None
    metadata = directory / "metadata.json"
    if metadata.is_file():
        try:
            benchmark = json.loads(metadata.read_text(encoding="utf-8")).get("benchmark_full")
        except (OSError, ValueError, AttributeError):
            benchmark = None
    record = {
        "benchmark": benchmark,
        "scenario": parsed.scenario,
        "mode": parsed.mode,
        **parsed.record_fields(),
        "source": parsed.source,
    }
    json.dump(record, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pytest-mlperf`` console script."""
    parser = argparse.ArgumentParser(prog="pytest-mlperf", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_parse = sub.add_parser("parse", help="print the result record of a LoadGen log directory")
    p_parse.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if args.command == "parse":
        return _parse(args.directory)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse exits first
    return 2


if __name__ == "__main__":
    sys.exit(main())
