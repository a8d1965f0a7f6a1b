"""The integrations API: every endpoint of the seed at its exact path under /api/v1."""

from __future__ import annotations

from fastapi import FastAPI

from casefolio.api.routing import add_routes, move_to_front
from casefolio.api.v1 import (
    audit,
    changes,
    documents,
    documents_content,
    documents_versions,
    fields,
    folders,
    holds,
    projects,
    retention,
    search,
    settings,
    teams,
    templates,
    tokens,
    trash,
    users,
    webhooks,
)

# The seed's order: the OpenAPI document lists its tags (and /docs its sections) this way.
TAGS = [
    module.router.tags[0]
    for module in (
        tokens,
        users,
        teams,
        settings,
        projects,
        templates,
        folders,
        fields,
        documents,
        holds,
        trash,
        retention,
        search,
        audit,
        changes,
        webhooks,
    )
]


def install(app: FastAPI) -> None:
    """Add the /api/v1 routes to the app, on the app itself (api/routing.py)."""
    # The busiest first: routes are tried in order until one matches.
    # The documents tag's routes: api/v1/documents.py, and beside it content in and out and
    # the versions, in that order.
    for module in (documents, documents_content, documents_versions):
        add_routes(app, module.router)
    for module in (folders, fields, projects, templates, tokens, users, teams, settings):
        add_routes(app, module.router)
    for module in (
        holds,
        trash,
        retention,
    ):  # legal holds and the trash (domain/holds.py, domain/trash.py)
        add_routes(app, module.router)
    add_routes(app, search.router)  # full-text search (search/)
    for module in (audit, changes, webhooks):  # the outbound half (outbound/)
        add_routes(app, module.router)
    # The read integrations make most is tried before any other route (even /docs).
    move_to_front(app, documents.read_document)
