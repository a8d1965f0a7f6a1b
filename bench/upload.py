"""2. Upload: a 1 GiB raw-body upload over HTTP vs. `sha256sum` + writing the bytes to disk.

Reference: `sha256sum FILE` and `dd if=FILE of=<data dir>/copy bs=1M conv=fsync` started
together (what a streaming receiver that hashes while it writes could reach), on the same
filesystem as the server's data directory. The source file is in the page cache for both.
Targets: >= 0.6x the reference's MB/s; server RSS growth during the upload <= 64 MiB.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from bench.common import (
    MB,
    Api,
    MiB,
    Options,
    Result,
    RssSampler,
    casefolio_server,
    instance,
    log,
    tool,
    write_payload,
)
from bench.transfer import client_name, post_file

NAME = "upload"
TARGET = 0.6
RSS_LIMIT_MIB = 64


def reference(source: Path, target: Path) -> tuple[float, str, dict[str, float]]:
    """Hash and write+fsync `source` at the same time; return (seconds, sha256, details)."""
    sha256sum, dd = tool("sha256sum"), tool("dd")
    details: dict[str, float] = {}
    if sha256sum and dd:
        start = time.perf_counter()
        hasher = subprocess.Popen([sha256sum, str(source)], stdout=subprocess.PIPE, text=True)
        writer = subprocess.Popen(
            [dd, f"if={source}", f"of={target}", "bs=1M", "conv=fsync"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        out, _ = hasher.communicate()
        details["sha256sum_s"] = time.perf_counter() - start
        writer.wait()
        seconds = time.perf_counter() - start
        if hasher.returncode or writer.returncode:
            raise RuntimeError("sha256sum or dd failed")
        details["dd_fsync_s"] = seconds
        return seconds, out.split()[0], details
    # Without coreutils: the same single pass in Python (hashlib releases the GIL).
    import hashlib
    import os

    start = time.perf_counter()
    h = hashlib.sha256()
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(MiB):
            h.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return time.perf_counter() - start, h.hexdigest(), details


def run(opts: Options, workdir: Path, result: Result) -> None:
    size = opts.upload_mib * MiB
    result.params.update(size_mib=opts.upload_mib, servers=list(opts.servers), client=client_name())
    with instance(opts, workdir, NAME) as inst:
        payload = workdir / "payload.bin"
        log(f"writing a {opts.upload_mib} MiB random payload")
        write_payload(payload, size)
        copy = inst.data_dir / "reference-copy.bin"
        # Best of two: disk speed varies; the reference should be what the disk can do.
        runs = [reference(payload, copy) for _ in range(1 if opts.quick else 2)]
        copy.unlink()
        ref_s, sha, ref_details = min(runs, key=lambda r: r[0])
        ref_mbs = size / ref_s / MB
        result.details["reference"] = {
            "seconds": ref_s,
            "mb_per_s": ref_mbs,
            "all_mb_per_s": [size / r[0] / MB for r in runs],
            **ref_details,
        }
        log(f"reference: sha256sum + dd conv=fsync: {ref_mbs:.0f} MB/s")
        for kind in opts.servers:
            with casefolio_server(inst, server=kind, log_level=opts.log_level) as srv:
                with Api(srv.base, inst.token) as api:
                    project = api.create_project(f"upload {kind}")
                url = f"{srv.base}/api/v1/projects/{project}/documents?fileName=payload.bin"
                with RssSampler(srv.pid) as rss:
                    sent = post_file(url, payload, inst.headers)
                if sent.status != 201:
                    raise RuntimeError(f"upload answered {sent.status}: {sent.body[:300]!r}")
                stored = json.loads(sent.body)["currentVersion"]
                if stored["sha256"] != sha or stored["size"] != size:
                    raise RuntimeError(f"stored {stored['sha256']}/{stored['size']}, sent {sha}")
            mbs = sent.mb_per_s
            growth_mib = rss.growth / MiB
            log(f"{kind}: {mbs:.0f} MB/s, server RSS +{growth_mib:.1f} MiB")
            result.details[kind] = {
                "seconds": sent.seconds,
                "mb_per_s": mbs,
                "rss_baseline_mib": rss.baseline / MiB,
                "rss_peak_mib": rss.peak / MiB,
            }
            result.add(
                f"{kind}: throughput",
                mbs,
                "MB/s",
                reference=ref_mbs,
                reference_label="sha256sum+dd",
                target=TARGET,
            )
            result.add_absolute(
                f"{kind}: server RSS growth", growth_mib, "MiB", maximum=RSS_LIMIT_MIB
            )
