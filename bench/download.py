"""3. Download: 1 GiB through GET …/documents/{id}/content vs. nginx serving the same file.

nginx (the Debian package: `apt-get install nginx`) is started by the benchmark on a free
loopback port with a generated config (1 worker, sendfile on, no access log) whose root is
casefolio's blob folder, so both read the very same file from the page cache. The same
client (curl to /dev/null) downloads from each, casefolio and nginx alternating run by run
(a noisy machine then slows both alike); the median of a few runs counts.
Target: >= 0.8x nginx's MB/s.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from pathlib import Path
from typing import Any

from bench.common import (
    HOST,
    Api,
    MiB,
    Options,
    Process,
    Result,
    RssSampler,
    casefolio_server,
    free_port,
    instance,
    log,
    median,
    tool,
    wait_http,
    write_payload,
)
from bench.transfer import Transfer, client_name, get_to_null, post_file

NAME = "download"
TARGET = 0.8

NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 30;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen {host}:{port};
        root {root};
        location = /ready {{ return 200 "ok"; }}
    }}
}}
"""


class Nginx:
    def __init__(self, binary: str, root: Path, prefix: Path) -> None:
        prefix.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        conf = prefix / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(user=user, prefix=prefix, host=HOST, port=self.port, root=root)
        )
        self.process = Process(
            [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
            env=dict(os.environ),
            log_path=prefix / "stdout.log",
            cwd=prefix,
        )
        try:
            wait_http(f"http://{HOST}:{self.port}/ready", self.process, timeout=20)
        except BaseException:
            self.process.stop()
            raise

    def stop(self) -> None:
        self.process.stop()


def _get(url: str, headers: dict[str, str], size: int) -> Transfer:
    got = get_to_null(url, headers)
    if got.status != 200 or got.size != size:
        raise RuntimeError(f"GET {url} answered {got.status} with {got.size} bytes")
    return got


def _upload(srv_base: str, headers: dict[str, str], payload: Path, token: str) -> dict[str, Any]:
    with Api(srv_base, token) as api:
        project = api.create_project("download")
    sent = post_file(
        f"{srv_base}/api/v1/projects/{project}/documents?fileName=payload.bin",
        payload,
        headers,
    )
    if sent.status != 201:
        raise RuntimeError(f"upload answered {sent.status}: {sent.body[:300]!r}")
    doc: dict[str, Any] = json.loads(sent.body)
    return doc


def run(opts: Options, workdir: Path, result: Result) -> None:
    size = opts.upload_mib * MiB
    runs = 2 if opts.quick else 3
    result.params.update(
        size_mib=opts.upload_mib,
        runs=runs,
        servers=list(opts.servers),
        client=client_name(),
        order="casefolio and nginx alternate, run by run",
    )
    nginx_bin = tool("nginx")
    with instance(opts, workdir, NAME) as inst, contextlib.ExitStack() as stack:
        payload = workdir / "payload.bin"
        log(f"writing a {opts.upload_mib} MiB random payload")
        write_payload(payload, size)
        doc_url = ""
        nginx_url = ""
        references: list[float] = []
        for kind in opts.servers:
            with casefolio_server(inst, server=kind, log_level=opts.log_level) as srv:
                if not doc_url:
                    doc = _upload(srv.base, inst.headers, payload, inst.token)
                    sha = doc["currentVersion"]["sha256"]
                    doc_url = f"/api/v1/projects/{doc['projectId']}/documents/{doc['id']}/content"
                    payload.unlink()  # the blob is the only copy now
                    nginx_url = _start_nginx(stack, nginx_bin, inst.data_dir, sha, workdir, result)
                log(
                    f"{kind}: GET …/content x{runs}"
                    + (", each followed by nginx" if nginx_url else "")
                )
                ours: list[Transfer] = []
                ref: list[Transfer] = []
                with RssSampler(srv.pid) as rss:
                    for _ in range(runs):
                        # Alternating, so that both see the same moments of a noisy machine.
                        ours.append(_get(srv.base + doc_url, inst.headers, size))
                        if nginx_url:
                            ref.append(_get(nginx_url, {}, size))
            mbs = median([t.mb_per_s for t in ours])
            ref_mbs = median([t.mb_per_s for t in ref]) if ref else None
            references += [t.mb_per_s for t in ref]
            result.details[kind] = {
                "mb_per_s": [t.mb_per_s for t in ours],
                "nginx_mb_per_s": [t.mb_per_s for t in ref],
                "rss_growth_mib": rss.growth / MiB,
            }
            log(f"{kind}: {mbs:.0f} MB/s (server RSS +{rss.growth / MiB:.1f} MiB)")
            if ref_mbs is not None:
                log(f"nginx, alternating with {kind}: {ref_mbs:.0f} MB/s")
            result.add(
                f"{kind}: throughput",
                mbs,
                "MB/s",
                reference=ref_mbs,
                reference_label="nginx",
                target=TARGET,
            )
            result.add_absolute(f"{kind}: server RSS growth", rss.growth / MiB, "MiB")
        if references:
            result.details["nginx"] = {"mb_per_s": references}


def _start_nginx(
    stack: contextlib.ExitStack,
    nginx_bin: str | None,
    data_dir: Path,
    sha: str,
    workdir: Path,
    result: Result,
) -> str:
    """Serve the blob with nginx until the benchmark ends; return its URL ("" when we cannot)."""
    blob_root = data_dir / "blobs"
    blob_rel = f"{sha[:2]}/{sha[2:4]}/{sha}"
    if nginx_bin is None:
        result.skip("nginx not installed (apt-get install nginx); no reference")
        return ""
    if not (blob_root / blob_rel).is_file():
        result.skip("blob not found under the data dir's blobs/ (not a local store?)")
        return ""
    nginx = Nginx(nginx_bin, blob_root, workdir / "nginx")
    stack.callback(nginx.stop)
    return f"http://{HOST}:{nginx.port}/{blob_rel}"
