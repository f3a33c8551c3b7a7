"""``pytest-mlperf`` console script: ``parse DIR`` prints the result record of any LoadGen logs.

With ``--dataset PATH`` it also scores ``DIR/mlperf_log_accuracy.json`` against that data set
(SQuAD ``.json`` → F1/exact match, KiTS-style ``.npz`` → DICE) and adds an ``accuracy``
object; the benchmark (``--benchmark`` or the harness's ``metadata.json``) gives the target:
its published one, or ``--fp32-reference`` × its 99 % / 99.9 % ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_mlperf.errors import MlperfError
from pytest_mlperf.results.loadgen import ACCURACY, parse_dir


def _accuracy(
    directory: Path, dataset: Path, benchmark: str | None, fp32_reference: float | None
) -> dict[str, Any]:
    """The ``accuracy`` object for the log in ``directory``; raises MlperfError."""
    from pytest_mlperf.accuracy.evaluate import (
        AccuracyData,
        accuracy_record,
        accuracy_target,
        evaluate_log,
    )
    from pytest_mlperf.catalog import default_dirs, load_catalog
    from pytest_mlperf.errors import ConfigError

    log = directory / ACCURACY
    if not log.is_file():
        raise ConfigError(f"no {ACCURACY} in {directory}: nothing to score against {dataset}")
    target = None
    if benchmark:
        catalog = load_catalog(default_dirs())
        if benchmark not in catalog.variant_names:
            raise ConfigError(
                f"unknown benchmark {benchmark!r}; valid: {', '.join(catalog.variant_names)}"
            )
        bench, variant = catalog.benchmark(benchmark), catalog.variant(benchmark)
        reference = None if fp32_reference is None else {bench.accuracy_metric: fp32_reference}
        target = accuracy_target(
            bench,
            variant,
            AccuracyData(dataset, reference, "--fp32-reference" if reference else ""),
        )
    figures = evaluate_log(log, dataset)
    return accuracy_record(figures, target)


def _parse(
    directory: Path,
    dataset: Path | None = None,
    benchmark: str | None = None,
    fp32_reference: float | None = None,
) -> int:
    if not directory.is_dir():
        print(f"pytest-mlperf parse: {directory} is not a directory", file=sys.stderr)
        return 2
    try:
        parsed = parse_dir(directory)
    except (MlperfError, OSError) as exc:
        print(f"pytest-mlperf parse: {exc}", file=sys.stderr)
        return 1
    explicit, benchmark = benchmark, None
    metadata = directory / "metadata.json"
    if metadata.is_file():
        try:
            benchmark = json.loads(metadata.read_text(encoding="utf-8")).get("benchmark_full")
        except (OSError, ValueError, AttributeError):
            benchmark = None
    benchmark = explicit or benchmark
    record: dict[str, Any] = {
        "benchmark": benchmark,
        "scenario": parsed.scenario,
        "mode": parsed.mode,
        **parsed.record_fields(),
        "source": parsed.source,
    }
    if dataset is not None:
        try:
            record["accuracy"] = _accuracy(directory, dataset, benchmark, fp32_reference)
        except (MlperfError, OSError) as exc:
            print(f"pytest-mlperf parse: {exc}", file=sys.stderr)
            return 1
    json.dump(record, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _compare(run_a: Path, run_b: Path, tolerance: str) -> int:
    from pytest_mlperf.baseline import parse_tolerance
    from pytest_mlperf.compare import compare_text

    try:
        lines = compare_text(run_a, run_b, parse_tolerance(tolerance, "--tolerance"))
    except MlperfError as exc:
        print(f"pytest-mlperf compare: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def _doctor(values: dict[str, str | None], as_json: bool) -> int:
    """``doctor``: the preflight table (or JSON); 1 when a check fails, 2 on bad input."""
    from pytest_mlperf.catalog import default_dirs, load_catalog
    from pytest_mlperf.config import OptionSpec, parse_run_config
    from pytest_mlperf.doctor import doctor_input, doctor_table, exit_code, run_doctor
    from pytest_mlperf.plugin import BUILTIN_BACKENDS

    def get(spec: OptionSpec) -> str | None:
        return values.get(spec.name)

    try:
        catalog = load_catalog(default_dirs())
        run_config = parse_run_config(get, catalog, list(BUILTIN_BACKENDS), Path.cwd())
        lines = run_doctor(doctor_input(run_config))
    except MlperfError as exc:
        print(f"pytest-mlperf doctor: {exc}", file=sys.stderr)
        return 2
    if as_json:
        json.dump([line.to_dict() for line in lines], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("\n".join(doctor_table(lines)))
    return exit_code(lines)


DESCRIPTION = """\
pytest-mlperf runs MLPerf Inference benchmarks (bert, 3d-unet) as pytest items: each
benchmark x scenario x mode is a test that fails when LoadGen calls the result INVALID or
it misses a threshold or baseline. Benchmarks are run by pytest, not by this command:

  pytest --mlperf-benchmarks=bert,3d-unet --mlperf-mode=performance --mlperf-fast
  pytest --help        (every --mlperf-* option, under "MLPerf Inference benchmarks")

A full (not --mlperf-fast) run follows MLPerf's rules: at least 600 s per item, so about
an hour for bert and 3d-unet. This command has the helpers below."""
EPILOG = """\
exit codes: 0 ok, 1 a check failed (doctor) or a run/log could not be read, 2 bad input.
docs: README.md and docs/ in the source distribution (docs/ci.md: CI recipes)."""


def version_text() -> str:
    """``pytest-mlperf 0.1.0 (pytest 9.0.3, mlperf-loadgen 6.0.17, python 3.11.7)``."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from pytest_mlperf import __version__

    parts = []
    for dist in ("pytest", "mlcommons-loadgen"):
        try:
            parts.append(f"{dist.replace('mlcommons-', 'mlperf-')} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} not installed")
    parts.append(f"python {platform.python_version()}")
    return f"pytest-mlperf {__version__} ({', '.join(parts)})"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pytest-mlperf`` console script."""
    parser = argparse.ArgumentParser(
        prog="pytest-mlperf",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_parse = sub.add_parser("parse", help="print the result record of a LoadGen log directory")
    p_parse.add_argument("directory", type=Path)
    p_parse.add_argument(
        "--dataset",
        type=Path,
        help="score mlperf_log_accuracy.json against this data set (SQuAD .json or KiTS .npz)",
    )
    p_parse.add_argument(
        "--benchmark",
        help="variant for the accuracy target (e.g. bert-99). Default: metadata.json's, if any",
    )
    p_parse.add_argument(
        "--fp32-reference",
        type=float,
        help="FP32 score on this data set; the target is then 99 %% / 99.9 %% of it. "
        "Default: the benchmark's published target",
    )
    p_compare = sub.add_parser(
        "compare", help="side-by-side table of two runs' results (results.json, run or results dir)"
    )
    p_compare.add_argument("run_a", metavar="RUN_A", type=Path)
    p_compare.add_argument("run_b", metavar="RUN_B", type=Path)
    p_compare.add_argument(
        "--tolerance", default="5", help="percent change still called 'same'. Default: 5"
    )
    p_doctor = sub.add_parser(
        "doctor",
        help="preflight: will a run work on this host? one table, each line a verdict and the fix",
    )
    for name, text in (
        ("benchmarks", "comma list (bert, 3d-unet, ...). Default: all"),
        ("backend", "auto, reference or nvidia. Default: auto"),
        ("harness-dir", "NVIDIA harness checkout (closed/NVIDIA)"),
        ("scratch-path", "MLPERF_SCRATCH_PATH: where data, models and engines go"),
        ("cache-dir", "reference backend's model cache"),
    ):
        p_doctor.add_argument(f"--{name}", help=text)
    p_doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    args = parser.parse_args(argv)
    if args.command is None:  # no command: say what this is and how benchmarks are run
        parser.print_help()
        return 2
    if args.command == "doctor":
        keys = ("benchmarks", "backend", "harness_dir", "scratch_path", "cache_dir")
        return _doctor({k: getattr(args, k) for k in keys}, args.json)
    if args.command == "parse":
        return _parse(args.directory, args.dataset, args.benchmark, args.fp32_reference)
    if args.command == "compare":
        return _compare(args.run_a, args.run_b, args.tolerance)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse exits first
    return 2


if __name__ == "__main__":
    sys.exit(main())
