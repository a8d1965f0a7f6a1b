"""Installation-wide settings (the seed's "Allowing access to the integrations API")."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from casefolio.db.models import SystemSetting
from casefolio.db.types import utcnow
from casefolio.domain import access, events
from casefolio.domain.principal import Principal

INTEGRATIONS_API_ENABLED = "integrationsApiEnabled"
API_DISABLED_MESSAGE = (
    "Access to the integrations API is switched off for this installation. "
    "An operator can switch it on with PATCH /api/v1/settings or `casefolio settings --api-on`."
)


@dataclass(frozen=True)
class SystemSettings:
    integrations_api_enabled: bool


async def get(session: AsyncSession) -> SystemSettings:
    row = await session.get(SystemSetting, INTEGRATIONS_API_ENABLED)
    # Off until an operator switches it on, as on the platform the seed describes.
    return SystemSettings(integrations_api_enabled=bool(row.value) if row else False)


async def update(
    session: AsyncSession, *, who: Principal | None, integrations_api_enabled: bool | None
) -> SystemSettings:
    if who is not None:
        access.require_operator(who, "change system settings")
    row = await session.get(SystemSetting, INTEGRATIONS_API_ENABLED)
    # The value it has already (`casefolio init` run again, a form sent unchanged): nothing
    # to write or report.
    unchanged = row is not None and bool(row.value) == integrations_api_enabled
    if integrations_api_enabled is not None and not unchanged:
        if row is None:
            session.add(SystemSetting(key=INTEGRATIONS_API_ENABLED, value=integrations_api_enabled))
        else:
            row.value = integrations_api_enabled
            row.updated_at = utcnow()
        await session.flush()
        events.emit(
            session,
            events.SettingsUpdated(details={"integrationsApiEnabled": integrations_api_enabled}),
        )
    return await get(session)
