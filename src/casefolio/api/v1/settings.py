"""System settings (operators)."""

from __future__ import annotations

from fastapi import Request

from casefolio.api.auth import forget_credentials
from casefolio.api.deps import PrincipalDep, SessionDep
from casefolio.api.v1.routing import patch_route, v1_router
from casefolio.api.v1.schemas import ApiInput, ApiModel
from casefolio.domain import system

router = v1_router("settings")


class SettingsOut(ApiModel):
    integrations_api_enabled: bool


class SettingsUpdate(ApiInput):
    integrations_api_enabled: bool | None = None


@router.get("/settings", response_model=SettingsOut, summary="Read system settings")
async def read_settings(session: SessionDep, _: PrincipalDep) -> SettingsOut:
    current = await system.get(session)
    return SettingsOut(integrations_api_enabled=current.integrations_api_enabled)


@patch_route(
    router, "/settings", response_model=SettingsOut, summary="Change system settings (operators)"
)
async def update_settings(
    request: Request, body: SettingsUpdate, session: SessionDep, who: PrincipalDep
) -> SettingsOut:
    current = await system.update(
        session, who=who, integrations_api_enabled=body.integrations_api_enabled
    )
    forget_credentials(request)
    return SettingsOut(integrations_api_enabled=current.integrations_api_enabled)
