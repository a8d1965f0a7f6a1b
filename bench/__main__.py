"""`python -m bench`: run the benchmarks, print a table, write JSON to bench/results/.

    python -m bench                      # full suite on SQLite (~5-10 minutes on 2 cores)
    python -m bench --quick              # small sizes: a smoke run for CI (~1-2 minutes)
    python -m bench --only upload        # one benchmark (repeat --only, or comma-separate)
    python -m bench --database postgresql  # the same suite on a fresh PostgreSQL database

Never fails on a timing: the exit code is 0 unless a benchmark crashed (1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from rich.console import Console
from rich.table import Table

from bench import (
    api_breakdown,
    api_overhead,
    download,
    ingest,
    large_project,
    listing,
    listing_load,
    outbound,
    search,
    sequential_writes,
    upload,
    web_pages,
)
from bench.common import DEFAULT_PG_ADMIN_URL, Options, Result, Skip, save_result

BENCHMARKS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        api_overhead,
        api_breakdown,
        upload,
        download,
        listing,
        listing_load,
        large_project,
        ingest,
        outbound,
        search,
        sequential_writes,
        web_pages,
    )
}


def parse_args(argv: list[str] | None) -> tuple[Options, list[str], bool]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these ({', '.join(BENCHMARKS)}); repeatable or comma-separated",
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--pg-admin-url",
        default=DEFAULT_PG_ADMIN_URL,
        help="PostgreSQL to create (and drop) fresh benchmark databases on",
    )
    parser.add_argument("--duration", type=float, help="seconds per load run (api_overhead)")
    parser.add_argument("--rounds", type=int, help="alternating load runs per app (api_overhead)")
    parser.add_argument("--connections", type=int, help="concurrent connections (api_overhead)")
    parser.add_argument("--upload-mib", type=int, help="upload/download size in MiB")
    parser.add_argument("--listing-docs", type=int, help="documents in the listing project")
    parser.add_argument(
        "--large-docs", type=int, help="documents in large_project's project (PostgreSQL)"
    )
    parser.add_argument("--ingest-docs", type=int, help="4 KiB documents to ingest")
    parser.add_argument("--search-docs", type=int, help="documents in the search corpus")
    parser.add_argument(
        "--ingest-max-seconds",
        type=float,
        help="stop ingesting over HTTP after this long (import gets twice as long)",
    )
    parser.add_argument(
        "--servers",
        default="uvicorn,granian",
        help="ASGI servers to measure api_overhead and download under (comma-separated)",
    )
    parser.add_argument(
        "--log-level", default="info", help="server log level, for casefolio and references"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary work directory and PostgreSQL database",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, module in BENCHMARKS.items():
            print(f"{name:14} {(module.__doc__ or '').strip().splitlines()[0]}")
        raise SystemExit(0)
    opts = Options(quick=args.quick, database=args.database, pg_admin_url=args.pg_admin_url)
    if args.quick:
        opts.apply_quick()
    for attr in (
        "duration",
        "rounds",
        "connections",
        "upload_mib",
        "listing_docs",
        "large_docs",
        "ingest_docs",
        "search_docs",
        "ingest_max_seconds",
    ):
        value = getattr(args, attr)
        if value is not None:
            setattr(opts, attr, value)
    if opts.rounds < 1:
        parser.error("--rounds must be at least 1")
    opts.servers = tuple(s.strip() for s in args.servers.split(",") if s.strip())
    opts.log_level = args.log_level
    opts.keep = args.keep
    names = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {list(BENCHMARKS)}")
    return opts, names or list(BENCHMARKS), args.no_save


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def print_table(console: Console, results: list[Result], database: str, quick: bool) -> None:
    mode = "quick" if quick else "full"
    table = Table(title=f"casefolio benchmarks ({database}, {mode})", show_lines=False)
    for col in ("benchmark", "metric", "casefolio", "reference", "ratio", "target", "met"):
        table.add_column(col, justify="right" if col in ("casefolio", "reference") else "left")
    for res in results:
        if res.error:
            table.add_row(res.name, "[red]error[/red]", res.error[:60], "", "", "", "")
        for row in res.rows:
            ref = ""
            if row.reference is not None:
                ref = f"{_fmt(row.reference, row.unit)} ({row.reference_label})"
            met = {True: "[green]yes[/green]", False: "[red]MISSED[/red]", None: ""}[row.met]
            metric = row.metric + (f" [dim]{row.note}[/dim]" if row.note else "")
            ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
            table.add_row(res.name, metric, _fmt(row.value, row.unit), ref, ratio, row.target, met)
        for line in res.skipped:
            table.add_row(res.name, f"[yellow]{line}[/yellow]", "", "", "", "", "")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    opts, names, no_save = parse_args(argv)
    # Wide enough for the table when piped (CI logs), the terminal's width otherwise.
    console = Console(width=None if sys.stdout.isatty() else 150)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="casefolio-bench-"))
    opts.workdir = workdir
    results: list[Result] = []
    crashed = False
    started = time.monotonic()
    try:
        for name in names:
            console.rule(f"[bold]{name}[/bold] ({opts.database})")
            result = Result(name, opts.database)
            began = time.monotonic()
            bench_dir = workdir / name
            bench_dir.mkdir()
            # The previous benchmark's writes (a million-row database, 1 GiB files) would
            # otherwise still be on their way to disk, slowing this one's fsyncs.
            os.sync()
            result.details["loadavg_before"] = os.getloadavg()
            if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
                console.print(
                    f"  [yellow]note: load average {os.getloadavg()[0]:.1f} before starting; "
                    "other work on this machine skews the numbers[/yellow]"
                )
            try:
                BENCHMARKS[name].run(opts, bench_dir, result)
            except Skip as exc:
                result.skip(str(exc))
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                crashed = True
                result.error = f"{type(exc).__name__}: {exc}"
                console.print(f"[red]{name} failed:[/red]")
                console.print(traceback.format_exc(), markup=False, highlight=False)
            finally:
                result.seconds = time.monotonic() - began
                result.details["loadavg_after"] = os.getloadavg()
                if not opts.keep:
                    shutil.rmtree(bench_dir, ignore_errors=True)
            results.append(result)
            if no_save:
                console.print(f"  [dim]{result.seconds:.0f}s[/dim]")
            else:
                path = save_result(result, stamp)
                shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
                console.print(f"  [dim]{shown} ({result.seconds:.0f}s)[/dim]")
    finally:
        if opts.keep:
            console.print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(console, results, opts.database, opts.quick)
    console.print(f"total {time.monotonic() - started:.0f}s; timings are reported, never asserted.")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
