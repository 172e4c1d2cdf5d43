"""Who an application request comes from: ``Authorization: Bearer <app token>``, resolved
from memory by :meth:`broker.apps.registry.Apps.by_token` (401 ``M_MISSING_TOKEN`` without
one, ``M_UNKNOWN_TOKEN`` for a wrong or revoked one)."""

from __future__ import annotations

from twisted.web.http import Request

from broker.apps.registry import Apps
from broker.errors import Unauthenticated
from broker.http.user_auth import token_from_request
from storage.apps import AppRow


class AppTokens:
    """The authenticator the router's guards use for ``Access.APP`` routes."""

    def __init__(self, apps: Apps) -> None:
        self.apps = apps

    def app_of(self, request: Request) -> AppRow:
        token = token_from_request(request)
        if not token:
            raise Unauthenticated("Missing application token", errcode="M_MISSING_TOKEN")
        return self.apps.by_token(token)

    def rate_key(self, app: object) -> str:
        assert isinstance(app, AppRow)
        return f"app:{app.app_id}"
