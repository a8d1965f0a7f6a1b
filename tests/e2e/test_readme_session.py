"""The README's curl session, run verbatim against a real `casefolio serve`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from casefolio.config import Settings
from tests.servers import init_token, running_server, server_env

README = Path(__file__).parents[2] / "README.md"


def readme_session() -> str:
    text = README.read_text()
    block = re.search(
        r"<!-- example-session:start -->\s*```sh\n(.*?)```\s*<!-- example-session:end -->",
        text,
        re.S,
    )
    assert block, "README lost its example session markers"
    return block.group(1)


def test_readme_curl_session_works_against_a_real_server(
    settings: Settings, tmp_path: Path
) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    workdir = tmp_path / "session"
    workdir.mkdir()
    with running_server(env) as server:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", readme_session()],
            cwd=workdir,
            env=env | {"BASE": server.base_url, "TOKEN": token},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["download matches the new version", "2"]

        headers = {"X-API-Token": token}
        [project] = httpx.get(f"{server.base_url}/api/v1/projects", headers=headers).json()
        docs = httpx.get(
            f"{server.base_url}/api/v1/projects/{project['id']}/documents", headers=headers
        ).json()
    [doc] = docs
    assert doc["title"] == "Particulars of claim"
    assert doc["folderId"] is not None
    assert doc["currentVersion"]["fileName"] == "claim-v2.txt"
    assert [f["value"] for f in doc["fields"]] == ["J. Smith"]
    assert (workdir / "downloaded.txt").read_text() == "Amended particulars of claim\n"
