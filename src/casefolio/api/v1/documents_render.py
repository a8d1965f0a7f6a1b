"""How /api/v1 answers a document: its schemas (DocumentOut, with its current VersionOut
and field values), built as models for one document, as plain data for search hits, and
as JSON text straight from the list's rows (domain/document_pages.py ListedDocument).

Used by every router that answers documents (documents, content, versions, search, trash).
"""

from __future__ import annotations

from json import loads
from json.encoder import encode_basestring
from typing import Any

from pydantic_core import to_json

from casefolio.api.v1.schemas import ApiModel, Timestamp, WireId
from casefolio.db.types import rfc3339
from casefolio.domain.document_pages import ListedDocument
from casefolio.domain.documents import DocumentView
from casefolio.domain.rows import VersionRow


class VersionOut(ApiModel):
    id: WireId
    document_id: WireId
    number: int
    file_name: str
    content_type: str
    size: int
    sha256: str
    created_by: WireId | None
    created_at: Timestamp


class FieldValueOut(ApiModel):
    id: WireId
    name: str
    type: str
    value: Any


class DocumentOut(ApiModel):
    id: WireId
    project_id: WireId
    folder_id: WireId | None
    title: str
    description: str
    created_by: WireId | None
    created_at: Timestamp
    updated_at: Timestamp
    current_version: VersionOut
    fields: list[FieldValueOut]


def version_out(v: VersionRow) -> VersionOut:
    """A version as the API answers it, built without validation (values come typed from
    the database)."""
    return VersionOut.model_construct(
        id=v.id,
        document_id=v.document_id,
        number=v.number,
        file_name=v.file_name,
        content_type=v.content_type,
        size=v.size,
        sha256=v.sha256,
        created_by=v.created_by,
        created_at=v.created_at,
    )


def document_out(view: DocumentView) -> DocumentOut:
    # Built without validation (model_construct): every value comes typed from the database,
    # and lists of documents build a hundred of these per request.
    d, v = view.document, view.current
    return DocumentOut.model_construct(
        id=d.id,
        project_id=d.project_id,
        folder_id=d.folder_id,
        title=d.title,
        description=d.description,
        created_by=d.created_by,
        created_at=d.created_at,
        updated_at=d.updated_at,
        current_version=version_out(v),
        fields=[
            FieldValueOut.model_construct(
                id=e.field.id, name=e.field.name, type=e.field.type, value=e.value
            )
            for e in view.fields
        ],
    )


def _listed(view: DocumentView) -> dict[str, Any]:
    """What `document_out(view)` dumps to (DocumentOut, by alias), built as plain data: a search
    answers up to a thousand documents, and pydantic's model and serializer cost several
    times more per document. tests/api/v1/test_document_list.py checks that the two agree."""
    d, v = view.document, view.current
    # Formatting a timestamp is most of a listed document's cost; a document's three are
    # often one instant (filed once, never changed), formatted once.
    created = rfc3339(d.created_at)
    updated = created if d.updated_at == d.created_at else rfc3339(d.updated_at)
    filed = created if v.created_at == d.created_at else rfc3339(v.created_at)
    # Ids inline (no helper call): a page of a hundred converts five hundred.
    return {
        "id": str(d.id),
        "projectId": str(d.project_id),
        "folderId": None if d.folder_id is None else str(d.folder_id),
        "title": d.title,
        "description": d.description,
        "createdBy": None if d.created_by is None else str(d.created_by),
        "createdAt": created,
        "updatedAt": updated,
        "currentVersion": {
            "id": str(v.id),
            "documentId": str(v.document_id),
            "number": v.number,
            "fileName": v.file_name,
            "contentType": v.content_type,
            "size": v.size,
            "sha256": v.sha256,
            "createdBy": None if v.created_by is None else str(v.created_by),
            "createdAt": filed,
        },
        "fields": [
            {"id": str(e.field.id), "name": e.field.name, "type": e.field.type, "value": e.value}
            for e in view.fields
        ],
    }


def views_json(views: list[DocumentView]) -> bytes:
    """Documents as the JSON body of an answer (compact, UTF-8, as pydantic's)."""
    # pydantic's own encoder: numbers and anything JSON has no type for come out as the
    # document's GET renders them.
    return to_json([_listed(view) for view in views])


#: Listed documents already written, by their values: a document's JSON is a function of its
#: ListedDocument alone (plain values of one type each: ints, text, None, the stored JSON text
#: of field values), and lists are polled again and again while few documents change. Read
#: from the database each time, a document whose values changed is a key not seen before,
#: whichever process changed it; nothing here can show a value the database no longer holds.
#: Bounded (emptied when full), and only short ones kept (descriptions may be long).
_WRITTEN: dict[ListedDocument, str] = {}
WRITTEN_MAX = 2048
WRITTEN_LONGEST = 2048


def list_json(documents: list[ListedDocument]) -> bytes:
    """A page of listed documents as the JSON body of its answer, byte for byte what
    `views_json` (and each document's GET) writes: formatted directly per document instead
    of from a model or a dict each (a page answers up to a thousand), or as written before
    for the same values."""
    written = _WRITTEN
    parts = []
    for document in documents:
        text = written.get(document)
        if text is None:
            text = _listed_json(document)
            if len(text) <= WRITTEN_LONGEST:
                if len(written) >= WRITTEN_MAX:
                    written.clear()
                written[document] = text
        parts.append(text)
    return ("[" + ",".join(parts) + "]").encode()


def _listed_json(document: ListedDocument) -> str:
    """A listed document's JSON, as DocumentOut dumps it by alias (compact, keys in its
    order): strings quoted by `encode_basestring` (the escapes pydantic's encoder writes,
    tests/api/v1/test_document_list.py), ids quoted, timestamps already text, field values
    by pydantic's own encoder (what the GET writes for any JSON)."""
    (
        document_id, project_id, folder_id, title, description, created_by, created_at,
        updated_at, version_id, version_document_id, number, file_name, content_type, size,
        sha256, version_created_by, version_created_at, fields,
    ) = document  # fmt: skip
    quote = encode_basestring
    # One f-string: a % template of the same text took a fifth more (bench/README.md).
    folder = "null" if folder_id is None else f'"{folder_id}"'
    by = "null" if created_by is None else f'"{created_by}"'
    version_by = "null" if version_created_by is None else f'"{version_created_by}"'
    values = (
        ",".join(
            [
                f'{{"id":"{f.id}","name":{quote(f.name)},"type":{quote(f.type)},'
                f'"value":{to_json(loads(f.value_json)).decode()}}}'
                for f in fields
            ]
        )
        if fields
        else ""
    )
    return (
        f'{{"id":"{document_id}","projectId":"{project_id}","folderId":{folder},'
        f'"title":{quote(title)},"description":{quote(description)},"createdBy":{by},'
        f'"createdAt":"{created_at}","updatedAt":"{updated_at}",'
        f'"currentVersion":{{"id":"{version_id}","documentId":"{version_document_id}",'
        f'"number":{number},"fileName":{quote(file_name)},"contentType":{quote(content_type)},'
        f'"size":{size},"sha256":{quote(sha256)},"createdBy":{version_by},'
        f'"createdAt":"{version_created_at}"}},"fields":[{values}]}}'
    )
