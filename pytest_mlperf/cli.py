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

from pytest_mlperf import jsonstrict
from pytest_mlperf.errors import MlperfError
from pytest_mlperf.pathcheck import path_problem
from pytest_mlperf.results.loadgen import ACCURACY, parse_dir


def _accuracy(
    directory: Path, dataset: Path, benchmark: str | None, fp32_reference: float | None
) -> dict[str, Any]:
    """The ``accuracy`` object for the log in ``directory``; raises MlperfError."""
    from pytest_mlperf.accuracy.evaluate import accuracy_record, accuracy_target, evaluate_log
    from pytest_mlperf.backends.base import AccuracyData
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
    problem = path_problem(directory)
    if problem is not None or not directory.is_dir():
        print(
            f"pytest-mlperf parse: {directory} {problem or 'is not a directory'}", file=sys.stderr
        )
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
            benchmark = jsonstrict.load_file(metadata).get("benchmark_full")
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


def _split_node(arg: str) -> tuple[Path, str | None]:
    """``RUN@NODE`` → (RUN, NODE): one node's records of a fleet run (when RUN@NODE itself
    is not an existing path)."""
    if "@" in arg and not Path(arg).exists():
        path, _, node = arg.rpartition("@")
        if path and node:
            return Path(path), node
    return Path(arg), None


def _load_node(arg: str, option: str) -> Any:
    """A results file, narrowed to one node's records with ``RUN@NODE``."""
    import dataclasses

    from pytest_mlperf.errors import ConfigError
    from pytest_mlperf.fleet import node_name
    from pytest_mlperf.history.results_file import load_results

    path, node = _split_node(arg)
    loaded = load_results(path, option)
    if node is None:
        return loaded
    default = loaded.path.parent.name
    items = tuple(i for i in loaded.items if node_name(i, default) == node)
    if not items:
        nodes = sorted({node_name(i, default) for i in loaded.items})
        raise ConfigError(
            f"{option}: {loaded.path} has no records of node {node!r}; valid: {', '.join(nodes)}"
        )
    return dataclasses.replace(loaded, path=Path(f"{loaded.path}@{node}"), items=items)


def _compare(run_a: str, run_b: str, tolerance: str) -> int:
    from pytest_mlperf.baseline import parse_tolerance
    from pytest_mlperf.compare import COLUMNS, compare_rows
    from pytest_mlperf.report.terminal import text_table

    try:
        tol = parse_tolerance(tolerance, "--tolerance")
        a, b = _load_node(run_a, "RUN_A"), _load_node(run_b, "RUN_B")
    except MlperfError as exc:
        print(f"pytest-mlperf compare: {exc}", file=sys.stderr)
        return 2
    lines = [f"A: {a.describe()}", f"B: {b.describe()}"]
    rows = compare_rows(a, b, tol)
    if not rows:
        lines.append("no items in either run")
    else:
        lines.extend(text_table(COLUMNS, rows))
        worse = sum(1 for r in rows if r[-1] == "worse")
        better = sum(1 for r in rows if r[-1] == "better")
        lines.append(
            f"{len(rows)} items: {worse} worse, {better} better beyond ±{tol:g} % "
            "(throughput: higher is better; latency: lower is better)"
        )
    print("\n".join(lines))
    return 0


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A results.json (or a run dir holding one) as a dict; raises ConfigError."""
    from pytest_mlperf.errors import ConfigError
    from pytest_mlperf.history.results_file import find_results_file, load_results

    source = find_results_file(path, what)
    load_results(source, what)  # validates: schema_version, items, each item's fields
    try:
        data: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot read {source}: {exc}") from exc
    return data


def _mad_k(text: str) -> float:
    try:
        k = float(text)
    except ValueError:
        k = -1.0
    if not 0 < k < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number > 0 (e.g. 3)")
    return k


def _merge(
    files: list[Path], output: Path, k: float, tolerance: str, html_path: Path | None
) -> int:
    """``merge``: per-node results.json files → one fleet results.json (+ HTML); the table."""
    from pytest_mlperf.baseline import parse_tolerance
    from pytest_mlperf.fleet import fleet_table, merge_results
    from pytest_mlperf.results.store import atomic_write_json, atomic_write_text

    try:
        tol = parse_tolerance(tolerance, "--tolerance")
        loaded = [(str(f), _read_json(f, "RESULTS")) for f in files]
        merged = merge_results(loaded, k, tol)
        target = output / "results.json" if output.is_dir() or not output.suffix else output
        atomic_write_json(target, merged)
        if html_path is not None:
            from pytest_mlperf.report.html import fleet_html, summary_html

            try:
                items = summary_html(merged["items"], merged["host"], str(target.parent))
            except (KeyError, TypeError, AttributeError) as exc:  # hand-made or older records
                items = f"<p>item table unavailable: a record lacks {exc}</p>"
            page = (
                "<!DOCTYPE html><html><head><meta charset='utf-8'>"
                "<title>MLPerf fleet</title></head><body>"
                + fleet_html(merged["fleet"])
                + items
                + "</body></html>"
            )
            atomic_write_text(html_path, page)
    except (MlperfError, ValueError) as exc:
        print(f"pytest-mlperf merge: {exc}", file=sys.stderr)
        return 2
    print("\n".join(fleet_table(merged["fleet"])))
    print(f"merged {len(files)} file(s), {len(merged['items'])} records: {target}")
    return 1 if merged["fleet"]["outliers"] else 0


def _fleet(run: Path, k: float, tolerance: str) -> int:
    """``fleet``: the fleet table of one run (or of a merged file); 1 when a node is off."""
    from pytest_mlperf.baseline import parse_tolerance
    from pytest_mlperf.fleet import fleet_table, fleet_view

    try:
        tol = parse_tolerance(tolerance, "--tolerance")
        data = _read_json(run, "RUN")
    except MlperfError as exc:
        print(f"pytest-mlperf fleet: {exc}", file=sys.stderr)
        return 2
    view = fleet_view(data["items"], data.get("nodes") or {}, k, tol)
    print("\n".join(fleet_table(view)))
    return 1 if view["outliers"] else 0


def _doctor(values: dict[str, str | None], as_json: bool) -> int:
    """``doctor``: the preflight table (or JSON); 1 when a check fails, 2 on bad input."""
    from pytest_mlperf.backends import BUILTIN_BACKENDS
    from pytest_mlperf.catalog import default_dirs, load_catalog
    from pytest_mlperf.config import OptionSpec, parse_run_config
    from pytest_mlperf.doctor import doctor_input, doctor_table, exit_code, run_doctor

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
        json.dump([line.doctor_dict() for line in lines], sys.stdout, indent=2)
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


def _add_parse(sub: Any) -> None:
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


def _add_compare(sub: Any) -> None:
    p_compare = sub.add_parser(
        "compare", help="side-by-side table of two runs' results (results.json, run or results dir)"
    )
    p_compare.add_argument("run_a", metavar="RUN_A", help="a run; RUN@NODE: one node's records")
    p_compare.add_argument("run_b", metavar="RUN_B", help="a run; RUN@NODE: one node's records")
    p_compare.add_argument(
        "--tolerance", default="5", help="percent change still called 'same'. Default: 5"
    )


def _add_fleet(sub: Any) -> None:
    """``merge`` and ``fleet``."""
    p_merge = sub.add_parser(
        "merge",
        help="combine per-node results.json files (e.g. one per Kubernetes pod) into one fleet "
        "results.json with the fleet view; exit 1 when a node is an outlier",
    )
    p_merge.add_argument("files", metavar="RESULTS", type=Path, nargs="+")
    p_merge.add_argument(
        "-o", "--output", type=Path, required=True, help="the merged results.json (or a dir)"
    )
    p_merge.add_argument("--html", type=Path, help="also write a standalone fleet HTML page")
    p_fleet = sub.add_parser(
        "fleet", help="the fleet table of one run: each item per node, median, deviation"
    )
    p_fleet.add_argument("run", metavar="RUN", type=Path)
    for p in (p_merge, p_fleet):
        p.add_argument(
            "--mad-k", type=_mad_k, default=3.0, help="outlier bound k × MAD. Default: 3"
        )
        p.add_argument(
            "--tolerance", default="5", help="smallest outlier bound in percent. Default: 5"
        )


def _add_doctor(sub: Any) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    """The console script's parser: its commands in the order ``--help`` lists them."""
    from pytest_mlperf.history import command as history_command

    parser = argparse.ArgumentParser(
        prog="pytest-mlperf",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_parse(sub)
    _add_compare(sub)
    _add_fleet(sub)
    _add_doctor(sub)
    history_command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pytest-mlperf`` console script."""
    from pytest_mlperf.history import command as history_command

    parser = build_parser()
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
    if args.command == "merge":
        return _merge(args.files, args.output, args.mad_k, args.tolerance, args.html)
    if args.command == "fleet":
        return _fleet(args.run, args.mad_k, args.tolerance)
    if args.command == "history":
        return history_command.run(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse exits first
    return 2


if __name__ == "__main__":
    sys.exit(main())
