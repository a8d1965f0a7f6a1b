"""The integrations API: every endpoint of the seed at its exact path under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from casefolio.api.auth import authenticate
from casefolio.api.v1 import (
    documents,
    fields,
    folders,
    projects,
    settings,
    teams,
    templates,
    tokens,
    users,
)
from casefolio.api.v1.schemas import PROBLEM_RESPONSES


def build_router() -> APIRouter:
    # Authentication runs for every route (and is cached, so handlers asking for it reuse it).
    router = APIRouter(dependencies=[Depends(authenticate)], responses=PROBLEM_RESPONSES)
    for module in (tokens, users, teams, settings, projects, templates, folders, fields, documents):
        router.include_router(module.router)
    return router
