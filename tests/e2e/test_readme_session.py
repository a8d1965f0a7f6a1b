"""The README's curl session and large-file recipe, run verbatim against a real server."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import httpx

from casefolio.config import Settings
from tests.servers import init_token, running_server, server_env

README = Path(__file__).parents[2] / "README.md"


def readme_block(name: str) -> str:
    """The shell code between `<!-- name:start -->` and `<!-- name:end -->`, unindented."""
    block = re.search(
        rf"<!-- {name}:start -->\s*```sh\n(.*?)```\s*<!-- {name}:end -->", README.read_text(), re.S
    )
    assert block, f"README lost its {name} markers"
    return "\n".join(line.removeprefix("  ") for line in block.group(1).splitlines())


def run_session(env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    # The block sets its own shell options; plain `bash` proves that it does.
    return subprocess.run(
        ["bash", "-c", readme_block("example-session")],
        cwd=workdir,
        env=env | {"TMPDIR": str(workdir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_readme_curl_session_and_large_file_recipe_work_against_a_real_server(
    settings: Settings, tmp_path: Path
) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    workdir = tmp_path / "session"
    workdir.mkdir()
    with running_server(env) as server:
        done = run_session(env | {"BASE": server.base_url, "TOKEN": token}, workdir)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["download matches the new version", "2"]
        [session_dir] = workdir.iterdir()  # it made a folder of its own under TMPDIR
        assert (session_dir / "downloaded.txt").read_text() == "Amended particulars of claim\n"

        headers = {"X-API-Token": token}
        [project] = httpx.get(f"{server.base_url}/api/v1/projects", headers=headers).json()
        documents = f"{server.base_url}/api/v1/projects/{project['id']}/documents"
        [doc] = httpx.get(documents, headers=headers).json()
        assert doc["title"] == "Particulars of claim"
        assert doc["folderId"] is not None
        assert doc["currentVersion"]["fileName"] == "claim-v2.txt"
        assert [f["value"] for f in doc["fields"]] == ["J. Smith"]

        big = bytes(range(256)) * 8192  # 2 MiB
        (workdir / "big.pdf").write_bytes(big)
        recipe = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", readme_block("large-file")],
            cwd=workdir,
            env=env
            | {
                "BASE": server.base_url,
                "H": f"X-API-Token: {token}",
                "PROJECT": str(project["id"]),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert recipe.returncode == 0, recipe.stderr
        uploaded = {d["title"]: d for d in httpx.get(documents, headers=headers).json()}
    version = uploaded["big.pdf"]["currentVersion"]
    assert version["fileName"] == "big.pdf"
    assert version["size"] == len(big)
    assert version["sha256"] == hashlib.sha256(big).hexdigest()


def test_readme_session_with_a_wrong_token_stops_at_the_first_request_saying_why(
    settings: Settings, tmp_path: Path
) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    init_token(env)
    workdir = tmp_path / "session"
    workdir.mkdir()
    # Files of an earlier, successful run must not make a failed one look successful.
    (workdir / "downloaded.txt").write_text("Amended particulars of claim\n")
    (workdir / "claim-v2.txt").write_text("Amended particulars of claim\n")
    with running_server(env) as server:
        done = run_session(env | {"BASE": server.base_url, "TOKEN": "cf_wrong"}, workdir)
        projects = httpx.get(
            f"{server.base_url}/api/v1/projects", headers={"X-API-Token": init_token(env)}
        ).json()
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.splitlines() == ["curl: (22) The requested URL returned error: 401"]
    assert projects == []


def test_readme_legal_hold_block_works_against_a_real_server(
    settings: Settings, tmp_path: Path
) -> None:
    env = server_env(settings.data_dir, settings.effective_database_url)
    token = init_token(env)
    session = readme_block("example-session")
    helper = next(line for line in session.splitlines() if line.startswith("json()"))
    with running_server(env) as server:
        headers = {"X-API-Token": token}
        base = server.base_url
        project = httpx.post(
            f"{base}/api/v1/projects", json={"name": "Held"}, headers=headers
        ).json()["id"]
        doc = httpx.post(
            f"{base}/api/v1/projects/{project}/documents",
            params={"fileName": "claim.txt"},
            content=b"claim",
            headers=headers,
        ).json()["id"]
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", f"{helper}\n{readme_block('legal-hold')}"],
            cwd=tmp_path,
            env=env | {"BASE": base, "H": f"X-API-Token: {token}", "PROJECT": project, "DOC": doc},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        assert "is under legal hold" in done.stdout and "Exhibit A" in done.stdout
        read = httpx.get(f"{base}/api/v1/projects/{project}/documents/{doc}", headers=headers)
        assert read.status_code == 200  # deleted, then restored
        # Its new version was deleted, then restored: current again, and no longer trashed.
        assert read.json()["currentVersion"]["fileName"] == "draft.txt"
        trashed = httpx.get(f"{base}/api/v1/projects/{project}/trash/versions", headers=headers)
        assert trashed.json() == []
        rule = httpx.get(f"{base}/api/v1/projects/{project}/retention", headers=headers)
        assert rule.json() == {"keepYears": 7, "then": "review"}
