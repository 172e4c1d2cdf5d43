"""The plain REST API of eGov applications, `/_broker/apps/v1` (endpoints only).

Applications authenticate with ``Authorization: Bearer <app token>`` (``Access.APP``,
resolved from memory by :class:`broker.apps_api.auth.AppTokens`); each request takes a token
from the app's bucket (``rate_limits.app_messages``).  The reference is
docs/api/broker-apps.openapi.yaml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker.apps.wiring import AppServices
    from broker.http.endpoint import Endpoints
    from broker.media.repository import MediaRepository


def apps_endpoints(apps: AppServices, media: MediaRepository, upload_limit: int,
                   max_message_bytes: int) -> list[Endpoints]:
    """The application API's endpoints and the admin API's apps endpoints."""
    from broker.admin_api.apps import AppEndpoints
    from broker.apps_api.groups import AppGroupEndpoints
    from broker.apps_api.info import AppInfoEndpoints
    from broker.apps_api.media import AppMediaEndpoints
    from broker.apps_api.messages import AppMessageEndpoints

    return [AppEndpoints(apps.registry, apps.registry.audit), AppInfoEndpoints(),
            AppMediaEndpoints(media, upload_limit),
            AppMessageEndpoints(apps.messages, max_message_bytes),
            AppGroupEndpoints(apps.groups)]
