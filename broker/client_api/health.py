"""``GET /health``: whether a load balancer should send requests to this node."""

from __future__ import annotations

from typing import Any

from broker.health import Health
from broker.http.endpoint import Access, Call, Endpoints, endpoint


class HealthEndpoints(Endpoints):
    def __init__(self, health: Health) -> None:
        self.health = health

    @endpoint("GET", "/health", access=Access.PUBLIC)
    async def health_check(self, call: Call) -> tuple[int, dict[str, Any]]:
        problem = await self.health.problem()
        if problem is None:
            return 200, {"status": "ok"}
        return 503, {"status": "unavailable", "reason": problem}
