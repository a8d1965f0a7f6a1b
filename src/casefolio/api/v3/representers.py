"""HAL representers: given rows and what the caller may do, return OpenProject's JSON.

Pure functions; render.py loads what they need. Field names, `_type` values and link names
follow OpenProject's representers (see docs/api-v3.md for where casefolio differs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

from casefolio import __version__
from casefolio.api.v3 import formattable, hal
from casefolio.api.v3.hal import Json, link
from casefolio.db.models import Project, User
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.domain.rows import DocumentData, VersionData

INSTANCE_NAME = "casefolio"
PROJECT_IDENTIFIER_PREFIX = "project-"


@dataclass(frozen=True)
class Rights:
    """What the caller may do in one project, as far as the v3 links need to know."""

    capabilities: frozenset[Capability]

    @property
    def manage_documents(self) -> bool:
        # OpenProject's "manage documents" permission is casefolio's documents.write.
        return Capability.DOCUMENTS_WRITE in self.capabilities

    @property
    def delete_attachments(self) -> bool:
        return Capability.DOCUMENTS_DELETE in self.capabilities


def project_identifier(project: Project) -> str:
    """OpenProject identifiers are never all digits; casefolio derives one from the id."""
    return f"{PROJECT_IDENTIFIER_PREFIX}{project.id}"


def document(doc: DocumentData, project: Project, rights: Rights) -> Json:
    """A Document as collection elements show it (no `_embedded`)."""
    links: Json = {
        "self": link(hal.document(doc.id), doc.title),
        "project": link(hal.project(project.id), project.name),
        "attachments": link(hal.document_attachments(doc.id)),
    }
    if rights.manage_documents:
        links["addAttachment"] = link(hal.document_attachments(doc.id), method="post")
        links["update"] = link(hal.document(doc.id), method="patch")
    return {
        "_type": "Document",
        "id": doc.id,
        "title": doc.title,
        "description": formattable.markdown(doc.description),
        "createdAt": hal.timestamp(doc.created_at),
        "updatedAt": hal.timestamp(doc.updated_at),
        "_links": links,
    }


# OpenProject's antivirus states are uploaded, prepared, scanned, quarantined and rescan;
# casefolio scans nothing, so every stored file is simply uploaded.
UPLOADED = "uploaded"


def attachment(
    version: VersionData, doc: DocumentData | None, author: User | None, rights: Rights
) -> Json:
    """An Attachment: one version of a document, its container; with `doc` None, an upload
    no document has claimed yet, whose container link is null and which its author (the
    only one who sees it) may delete."""
    content = hal.attachment_content(version.id)
    links: Json = {
        "self": link(hal.attachment(version.id), version.file_name),
        "author": link(hal.user(author.id), author.name) if author else link(None),
        "container": link(hal.document(doc.id), doc.title) if doc else link(None),
        "staticDownloadLocation": link(content),
        "downloadLocation": link(content),
    }
    if doc is None or rights.delete_attachments:
        links["delete"] = link(hal.attachment(version.id), method="delete")
    return {
        "_type": "Attachment",
        "id": version.id,
        # `title` is what older attachment_model.yml versions require, `status` what the
        # current one does; both are sent so clients of either schema are served.
        "title": version.file_name,
        "fileName": version.file_name,
        "fileSize": version.size,
        "description": formattable.plain(version.description),
        "status": UPLOADED,
        "contentType": version.content_type,
        # OpenProject sends md5; its schema takes any algorithm and we keep the one we store by.
        "digest": {"algorithm": "sha256", "hash": version.sha256},
        "createdAt": hal.timestamp(version.created_at),
        "_links": links,
    }


def project(row: Project) -> Json:
    base = hal.project(row.id)
    return {
        "_type": "Project",
        "id": row.id,
        "identifier": project_identifier(row),
        "name": row.name,
        "active": True,
        "public": False,
        "description": formattable.markdown(row.description),
        "statusExplanation": formattable.markdown(""),
        "createdAt": hal.timestamp(row.created_at),
        "updatedAt": hal.timestamp(row.updated_at),
        "_links": {
            "self": link(base, row.name),
            "parent": link(None),
            "status": link(None),
            "categories": link(f"{base}/categories"),
            "types": link(f"{base}/types"),
            "versions": link(f"{base}/versions"),
            "memberships": link(f"{hal.API}/memberships?filters={_memberships_filter(row.id)}"),
            "workPackages": link(f"{base}/work_packages"),
        },
    }


def _memberships_filter(project_id: int) -> str:
    spec = [{"project": {"operator": "=", "values": [str(project_id)]}}]
    return quote(json.dumps(spec, separators=(",", ":")), safe="")


def user(row: User, *, full: bool) -> Json:
    """A User; login, e-mail, names and admin only for the user themself or an operator."""
    out: Json = {
        "_type": "User",
        "id": row.id,
        "name": row.name,
        "avatar": None,  # casefolio keeps no avatars; the schema takes a URI or null
        "createdAt": hal.timestamp(row.created_at),
        "updatedAt": hal.timestamp(row.created_at),
        "_links": {"self": link(hal.user(row.id), row.name)},
    }
    if full:
        first, _, last = row.name.partition(" ")
        out.update(
            login=row.email,
            firstName=first,
            lastName=last,
            email=row.email,
            admin=row.is_operator,
            status="active" if row.active else "locked",
            language="en",
            identityUrl=None,
        )
    return out


def root(who: Principal) -> Json:
    api = hal.API
    out: Json = {
        "_type": "Root",
        "instanceName": INSTANCE_NAME,
        "_links": {
            "self": link(api),
            "configuration": link(f"{api}/configuration"),
            "memberships": link(f"{api}/memberships"),
            "priorities": link(f"{api}/priorities"),
            "relations": link(f"{api}/relations"),
            "statuses": link(f"{api}/statuses"),
            "time_entries": link(f"{api}/time_entries"),
            "types": link(f"{api}/types"),
            "workPackages": link(f"{api}/work_packages"),
            "user": link(hal.user(who.user_id), who.name),
            "userPreferences": link(f"{hal.user(who.user_id)}/preferences"),
        },
    }
    if who.is_operator:
        out["coreVersion"] = __version__  # OpenProject shows its version to admins only
    return out
