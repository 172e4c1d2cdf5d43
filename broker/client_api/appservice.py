"""``POST /_matrix/client/v1/appservice/{appserviceId}/ping``: an application service asks the
node to ping it, to check that both sides can reach each other."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints

from broker.appservice.client import AppServiceClient, BadStatus
from broker.appservice.services import AppServices
from broker.client_api import CLIENT_V1_PREFIX
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError, forbidden


class PingBody(Body):
    transaction_id: Annotated[str, StringConstraints(max_length=255)] | None = None


class AppServicePingEndpoints(Endpoints):
    def __init__(self, services: AppServices, client: AppServiceClient) -> None:
        self.services = services
        self.client = client

    @endpoint("POST", f"{CLIENT_V1_PREFIX}/appservice/(?P<service_id>[^/]+)/ping", access=Access.USER,
              body=PingBody, body_optional=True)
    async def ping(self, call: Call, service_id: str, body: PingBody
                   ) -> tuple[int, dict[str, Any]]:
        service = self.services.by_id(service_id)
        if service is None or call.user.app_service != service.id:
            raise forbidden("The access token is not the application service's")
        try:
            return 200, {"duration_ms": await self.client.ping(service, body.transaction_id)}
        except BadStatus as e:  # the spec's error carries the service's status and body
            error = MatrixError(502, e.errcode, e.message)
            error.extra.update(status=e.code, body=e.body)
            raise error from None
