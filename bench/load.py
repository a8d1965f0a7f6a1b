"""GET load against one URL: `wrk` when installed, else bench.loadgen in its own process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

from bench.common import BENCH_DIR, tool

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """Given wrk --latency output, return req/s, p50/p99 in ms, request and error counts."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if rps is None or total is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    pcts = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": _ms(pcts["50"]) if "50" in pcts else None,
        "p99_ms": _ms(pcts["99"]) if "99" in pcts else None,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": sum(int(x) for x in sock.groups()) if sock else 0,
    }


def run_get_load(
    url: str,
    headers: dict[str, str],
    *,
    connections: int,
    duration: float,
    warmup: float = 2.0,
    threads: int = 1,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Load `url` for `duration` seconds after a warm-up; return rps, latencies and errors.

    wrk gets one thread: on a 2-core machine the other core is the (1-worker) server's.
    `timeout`: seconds after which wrk gives up on a request (its default, 2 s, drops the
    slowest answers from its latencies, counting them as errors instead).
    """
    header_args = [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")]
    wrk = tool("wrk")
    if wrk is not None:
        base = [wrk, f"-t{threads}", f"-c{connections}", *header_args]
        if timeout is not None:
            base.append(f"--timeout={max(1, round(timeout))}s")
        if warmup > 0:
            subprocess.run(
                [*base, f"-d{max(1, round(warmup))}s", url], capture_output=True, check=True
            )
        done = subprocess.run(
            [*base, f"-d{max(1, round(duration))}s", "--latency", url],
            capture_output=True,
            text=True,
            check=True,
        )
        result = parse_wrk(done.stdout)
        result["tool"] = "wrk"
        return result
    cmd = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "get",
        url,
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        *header_args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=BENCH_DIR.parent)
    result = json.loads(done.stdout)
    result["tool"] = "bench.loadgen (wrk not installed)"
    return result
