"""Where an import files: the run's access check, the folder tree made for the scanned
directories, and what is already filed under the base folder (what a re-run skips or
versions, and which documents' files are gone from the tree).

The pipeline that then stages, stores and files the tree is domain/importing.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.live import LIVE
from casefolio.db.models import Document, DocumentVersion, Folder
from casefolio.domain import access, fields, folders, intake
from casefolio.domain.access import ProjectScope
from casefolio.domain.errors import DomainError
from casefolio.domain.import_sources import Scan
from casefolio.domain.principal import Principal
from casefolio.domain.roles import Capability
from casefolio.domain.transfer import FileEvent


class FileKey(NamedTuple):
    """A file as a re-run recognises it: its folder (0 for the root), name and content.

    The name counts too: two files with the same bytes under different names are two
    documents, as they were two files (and an export writes both back).
    """

    folder_id: int
    file_name: str
    sha256: str


@dataclass
class ImportTarget:
    """What an import run files into, found (and its folders made) before any file is read."""

    scope: ProjectScope
    folder_of: dict[PurePosixPath, int | None] = field(default_factory=dict)
    folder_problem: dict[PurePosixPath, str] = field(default_factory=dict)
    # What is already filed in the target folders, plus what this run is filing: a file
    # whose key is here is skipped. About 150 bytes each.
    present: set[FileKey] = field(default_factory=set)
    # The newest document per (folder, file name): a changed file becomes its version.
    current: dict[tuple[int, str], int] = field(default_factory=dict)
    missing: list[FileEvent] = field(default_factory=list)


async def prepare(
    session: AsyncSession,
    *,
    who: Principal,
    project_id: int,
    scan: Scan,
    base_folder_id: int | None,
) -> ImportTarget:
    """Check rights, find or create the folder tree, and load what is already there."""
    scope = await access.scope(session, who, project_id, Capability.DOCUMENTS_WRITE)
    # Imported documents get no field values: refuse now, not batch by batch.
    await fields.resolve_values(session, scope=scope, values={}, for_new_document=True)
    if base_folder_id is not None:
        await folders.get(session, scope=scope, folder_id=base_folder_id)
    target = ImportTarget(scope)
    target.folder_of[PurePosixPath(".")] = base_folder_id
    for directory in scan.directories:
        await _ensure_folder(session, target, directory)
    await _load_present(session, target, base_folder_id, scan)
    return target


async def _ensure_folder(
    session: AsyncSession, target: ImportTarget, directory: PurePosixPath
) -> None:
    parent = directory.parent
    if parent in target.folder_problem or parent not in target.folder_of:
        target.folder_problem[directory] = target.folder_problem.get(parent, "parent missing")
        return
    parent_id = target.folder_of[parent]
    found = await folders.find_child(
        session, scope=target.scope, parent_id=parent_id, name=directory.name
    )
    if found is not None:
        target.folder_of[directory] = found.id
        return
    try:
        created = await folders.create(
            session, scope=target.scope, name=directory.name, parent_id=parent_id
        )
    except DomainError as exc:
        target.folder_problem[directory] = f"folder not created: {exc.message}"
        return
    target.folder_of[directory] = created.id


async def _load_present(
    session: AsyncSession, target: ImportTarget, base_folder_id: int | None, scan: Scan
) -> None:
    """Load the documents under the base folder, at any depth: what a re-run skips or
    versions, and which files are no longer in the tree."""
    project_id = target.scope.project_id
    children: dict[int | None, list[tuple[int, str]]] = {}
    for folder_id, parent_id, name in await session.execute(
        select(Folder.id, Folder.parent_id, Folder.name).where(Folder.project_id == project_id)
    ):
        children.setdefault(parent_id, []).append((folder_id, name))
    path_of: dict[int | None, PurePosixPath] = {base_folder_id: PurePosixPath(".")}
    todo = [base_folder_id]
    while todo:
        parent = todo.pop()
        for folder_id, name in children.get(parent, []):
            path_of[folder_id] = path_of[parent] / name
            todo.append(folder_id)
    # By folder id and stored name, not by path: a folder's stored name is cleaned (a
    # directory " minutes " is the folder "minutes"), so a path would never match.
    in_tree = {_filed_at(target, s.relative) for s in scan.files}
    in_tree.update(_filed_at(target, PurePosixPath(p.path)) for p in scan.problems)
    ids = [i for i in path_of if i is not None]
    where = [Document.folder_id.in_(ids[i : i + 500]) for i in range(0, len(ids), 500)]
    if base_folder_id is None:
        where.append(Document.folder_id.is_(None))
    for condition in where:
        rows = await session.execute(
            select(
                Document.id,
                Document.folder_id,
                DocumentVersion.file_name,
                DocumentVersion.sha256,
                DocumentVersion.size,
            )
            .join(DocumentVersion, DocumentVersion.id == Document.current_version_id)
            .where(Document.project_id == project_id, condition, LIVE)
            .order_by(Document.id)
        )
        for document_id, in_folder, name, sha256, size in rows:
            target.present.add(FileKey(in_folder or 0, name, sha256))
            target.current[(in_folder or 0, name)] = document_id  # the newest wins
            path = path_of[in_folder] / name
            if (in_folder, name) not in in_tree:
                target.missing.append(
                    FileEvent(
                        path.as_posix(), "missing", size, "not in the tree; kept", planned=False
                    )
                )


def _filed_at(target: ImportTarget, relative: PurePosixPath) -> tuple[object, str]:
    """Where an imported file is filed: its folder's id (a marker where its directory has
    no folder) and its cleaned file name."""
    folder = target.folder_of.get(relative.parent, _NO_FOLDER)
    try:
        return folder, intake.clean_file_name(relative.name)
    except DomainError:
        return folder, relative.name


_NO_FOLDER = object()
