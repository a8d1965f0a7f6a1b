"""3. Download: 1 GiB through GET …/documents/{id}/content vs. nginx serving the same file.

nginx (the Debian package: `apt-get install nginx`) is started by the benchmark on a free
loopback port with a generated config (1 worker, sendfile on, no access log) whose root is
casefolio's blob folder, so both read the very same file from the page cache. The same
client (curl to /dev/null) downloads from each; the median of a few runs counts.
Target: >= 0.8x nginx's MB/s.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

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


def _measure(url: str, headers: dict[str, str], size: int, runs: int) -> list[Transfer]:
    found = []
    for _ in range(runs):
        got = get_to_null(url, headers)
        if got.status != 200 or got.size != size:
            raise RuntimeError(f"GET {url} answered {got.status} with {got.size} bytes")
        found.append(got)
    return found


def run(opts: Options, workdir: Path, result: Result) -> None:
    size = opts.upload_mib * MiB
    runs = 2 if opts.quick else 3
    result.params.update(
        size_mib=opts.upload_mib, runs=runs, servers=list(opts.servers), client=client_name()
    )
    nginx_bin = tool("nginx")
    with instance(opts, workdir, NAME) as inst:
        payload = workdir / "payload.bin"
        log(f"writing a {opts.upload_mib} MiB random payload")
        write_payload(payload, size)
        doc_url = ""
        blob_rel = ""
        for kind in opts.servers:
            with casefolio_server(inst, server=kind, log_level=opts.log_level) as srv:
                if not doc_url:
                    with Api(srv.base, inst.token) as api:
                        project = api.create_project("download")
                    sent = post_file(
                        f"{srv.base}/api/v1/projects/{project}/documents?fileName=payload.bin",
                        payload,
                        inst.headers,
                    )
                    if sent.status != 201:
                        raise RuntimeError(f"upload answered {sent.status}: {sent.body[:300]!r}")
                    doc = json.loads(sent.body)
                    sha = doc["currentVersion"]["sha256"]
                    doc_url = f"/api/v1/projects/{project}/documents/{doc['id']}/content"
                    blob_rel = f"{sha[:2]}/{sha[2:4]}/{sha}"
                    payload.unlink()  # the blob is the only copy now
                log(f"{kind}: GET …/content x{runs}")
                with RssSampler(srv.pid) as rss:
                    ours = _measure(srv.base + doc_url, inst.headers, size, runs)
            mbs = median([t.mb_per_s for t in ours])
            result.details[kind] = {
                "mb_per_s": [t.mb_per_s for t in ours],
                "rss_growth_mib": rss.growth / MiB,
            }
            log(f"{kind}: {mbs:.0f} MB/s (server RSS +{rss.growth / MiB:.1f} MiB)")
            result.details.setdefault("_ours", {})[kind] = mbs
        ref_mbs = None
        blob_root = inst.data_dir / "blobs"
        if nginx_bin is None:
            result.skip("nginx not installed (apt-get install nginx); no reference")
        elif not (blob_root / blob_rel).is_file():
            result.skip("blob not found under the data dir's blobs/ (not a local store?)")
        else:
            nginx = Nginx(nginx_bin, blob_root, workdir / "nginx")
            try:
                log(f"nginx: GET x{runs}")
                ref = _measure(f"http://{HOST}:{nginx.port}/{blob_rel}", {}, size, runs)
            finally:
                nginx.stop()
            ref_mbs = median([t.mb_per_s for t in ref])
            result.details["nginx"] = {"mb_per_s": [t.mb_per_s for t in ref]}
            log(f"nginx: {ref_mbs:.0f} MB/s")
        for kind, mbs in result.details.pop("_ours").items():
            result.add(
                f"{kind}: throughput",
                mbs,
                "MB/s",
                reference=ref_mbs,
                reference_label="nginx",
                target=TARGET,
            )
            result.add_absolute(
                f"{kind}: server RSS growth", result.details[kind]["rss_growth_mib"], "MiB"
            )
