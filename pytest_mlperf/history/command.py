"""``pytest-mlperf history list|show|export|import``: read and fill a history store."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pytest_mlperf.history.settings import DEFAULT_FILE
from pytest_mlperf.history.store import HistoryError, open_store

DEFAULT_STORE = f"mlperf-results/{DEFAULT_FILE}"


def add_parser(sub: Any) -> None:
    """Add the ``history`` command to the console script's subparsers."""
    p = sub.add_parser("history", help="list, show, export or import the run history")
    p.add_argument(
        "--store",
        default=DEFAULT_STORE,
        help=f"SQLite file or postgresql:// URL (default: {DEFAULT_STORE})",
    )
    p.add_argument(
        "--html",
        metavar="OUT",
        help="write the trend page (every item over the history, noise band, decisions, "
        "change points) to OUT; with no ACTION, only that",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    p_list = actions.add_parser("list", help="the sessions, newest first")
    p_list.add_argument("--ref", help="only this ref")
    p_list.add_argument("--limit", type=int, default=50)
    p_show = actions.add_parser("show", help="one item's records, newest first")
    p_show.add_argument("item", help="benchmark/scenario/mode, e.g. bert-99/Offline/performance")
    p_show.add_argument("--ref", help="only this ref")
    p_show.add_argument("--all", action="store_true", help="also records that are not good")
    p_export = actions.add_parser("export", help="every session and record as JSON")
    p_export.add_argument("-o", "--output", help="write here instead of stdout")
    p_import = actions.add_parser(
        "import", help="add results.json files (runs, saved baselines) to the history"
    )
    p_import.add_argument("paths", nargs="+", help="results.json files or results directories")
    p_import.add_argument("--ref", required=True, help="the ref to file them under, e.g. main")


def _results_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        direct = path / "results.json"
        return [direct] if direct.is_file() else sorted(path.glob("*/results.json"))
    raise HistoryError(f"cannot import {path}: no such file or directory")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def run(args: argparse.Namespace) -> int:
    """Run the ``history`` command; 0, or 1 with one line on stderr."""
    if args.action is None and not args.html:
        print(
            "pytest-mlperf history: give an ACTION (list, show, export, import) or --html OUT",
            file=sys.stderr,
        )
        return 2
    try:
        if args.html:
            from pytest_mlperf.history.series import write_page

            count = write_page(args.store, Path(args.html), getattr(args, "ref", None))
            print(f"trend page: {args.html} ({count} series)")
            if args.action is None:
                return 0
        create = args.action == "import"
        with open_store(args.store, create=create) as store:
            if args.action == "list":
                rows = store.sessions(ref=args.ref, limit=args.limit)
                print(f"{store.location}: {store.count()} record(s)")
                for s in rows:
                    state = "good" if s.good else ("interrupted" if s.interrupted else "not good")
                    when = s.finished or s.started or s.added_at
                    print(f"{s.run_id}  {s.ref}  {when}  {state}  {s.commit or '-'}  {s.source}")
            elif args.action == "show":
                records = store.records(args.item, None, args.ref, good_only=not args.all)
                if not records:
                    print(f"{store.location}: no records of {args.item}", file=sys.stderr)
                    return 1
                print("recorded_at  run_id  ref  value  unit  good  outcome  fingerprint  commit")
                for r in records:
                    print(
                        f"{r.recorded_at}  {r.run_id}  {r.ref}  {_fmt(r.value)}  {r.unit}  "
                        f"{'good' if r.good else '-'}  {r.outcome}  {r.fingerprint_id}  "
                        f"{r.commit or '-'}"
                    )
            elif args.action == "export":
                data = {
                    "store": store.location,
                    "sessions": [asdict(s) for s in store.sessions()],
                    "records": [asdict(r) for r in store.all_records()],
                }
                text = json.dumps(data, indent=1, default=str)
                if args.output:
                    Path(args.output).write_text(text + "\n", encoding="utf-8")
                else:
                    print(text)
            else:  # import
                from pytest_mlperf.history.ingest import import_results

                for given in args.paths:
                    for path in _results_files(Path(given)):
                        run_id, added, good = import_results(store, path, args.ref)
                        state = "good" if good else "not good"
                        print(f"{path}: run {run_id}, {added} record(s) added ({state})")
    except HistoryError as exc:
        print(f"pytest-mlperf history: {exc}", file=sys.stderr)
        return 1
    return 0
