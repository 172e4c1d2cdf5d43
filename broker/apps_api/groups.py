"""``/_broker/apps/v1/groups``: groups an application manages (see :mod:`broker.apps.groups`).

- ``POST /groups`` ``{"name", "members": [<member>...]}`` → ``{"group_id", "room_id"}``;
- ``GET /groups``, ``GET /groups/{group_id}`` (with its members);
- ``PUT|DELETE /groups/{group_id}/members/{user_id}``: add or remove a member by user ID;
- ``PUT /groups/{group_id}/members`` ``{"member": <member>}``: add a member named any way;
- ``POST /groups/{group_id}/messages`` ``{"body", "format"?, "tags"?}`` → ``{"event_id"}``.

A member is named as a message's ``to``: a user ID, ``{"organisation", "employee_id"}``,
``{"email"}`` or ``{"phone"}``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from broker.apps.groups import MAX_MEMBERS, AppGroups
from broker.apps.recipients import RecipientRef
from broker.apps.sending import AppMessage
from broker.apps_api.calls import APPS_PREFIX, calling_app
from broker.apps_api.messages import MAX_BODY_TEXT, recipient_of, strict
from broker.errors import InvalidInput
from broker.http.bodies import Body, JsonObject, NoBody
from broker.http.endpoint import Access, Call, Endpoints, endpoint

GROUPS = f"{APPS_PREFIX}/groups"
ONE = f"{GROUPS}/(?P<group_id>[^/]+)"
MAX_NAME = 200


class GroupBody(Body):
    name: str
    members: list[str | dict[str, Any]] = []

    @model_validator(mode="after")
    def _checked(self) -> GroupBody:
        strict(self, "")
        if not self.name.strip() or len(self.name) > MAX_NAME:
            raise InvalidInput(f"'name' must be 1 to {MAX_NAME} characters")
        if len(self.members) > MAX_MEMBERS:
            raise InvalidInput(f"at most {MAX_MEMBERS} 'members'")
        return self

    def refs(self) -> list[RecipientRef]:
        return [recipient_of(member, "members") for member in self.members]


class GroupPostBody(Body):
    body: str
    format: Literal["plain", "html"] = "plain"
    tags: list[str] = []

    @model_validator(mode="after")
    def _checked(self) -> GroupPostBody:
        strict(self, "")
        if not self.body.strip() or len(self.body) > MAX_BODY_TEXT:
            raise InvalidInput(f"'body' must be 1 to {MAX_BODY_TEXT} characters")
        return self

    def message(self) -> AppMessage:
        return AppMessage(RecipientRef(), "notification", self.body, self.format == "html",
                          tuple(self.tags))


class AppGroupEndpoints(Endpoints):
    def __init__(self, groups: AppGroups) -> None:
        self.groups = groups

    @endpoint("POST", GROUPS, access=Access.APP, body=GroupBody, rate_limit="app_messages")
    async def create(self, call: Call, body: GroupBody) -> tuple[int, dict[str, Any]]:
        return 200, await self.groups.create(calling_app(call), body.name, body.refs())

    @endpoint("GET", GROUPS, access=Access.APP, rate_limit="app_messages")
    async def list(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, await self.groups.list(calling_app(call))

    @endpoint("GET", ONE, access=Access.APP, rate_limit="app_messages")
    async def get(self, call: Call, group_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.groups.get(calling_app(call), group_id)

    @endpoint("PUT", f"{ONE}/members/(?P<user_id>[^/]+)", access=Access.APP, body=NoBody,
              rate_limit="app_messages")
    async def add(self, call: Call, group_id: str, user_id: str) -> tuple[int, dict[str, Any]]:
        added = await self.groups.add(calling_app(call), group_id, RecipientRef(user_id))
        return 200, {"user_id": added}

    @endpoint("PUT", f"{ONE}/members", access=Access.APP, body=JsonObject,
              rate_limit="app_messages")
    async def add_named(self, call: Call, group_id: str, body: dict[str, Any]
                        ) -> tuple[int, dict[str, Any]]:
        if set(body) != {"member"}:
            raise InvalidInput("the body is {\"member\": <a user ID or {\"organisation\","
                               " \"employee_id\"}, {\"email\"} or {\"phone\"}>}",
                               errcode="M_BAD_JSON")
        added = await self.groups.add(calling_app(call), group_id,
                                      recipient_of(body["member"], "member"))
        return 200, {"user_id": added}

    @endpoint("DELETE", f"{ONE}/members/(?P<user_id>[^/]+)", access=Access.APP,
              rate_limit="app_messages")
    async def remove(self, call: Call, group_id: str, user_id: str
                     ) -> tuple[int, dict[str, Any]]:
        await self.groups.remove(calling_app(call), group_id, user_id)
        return 200, {}

    @endpoint("POST", f"{ONE}/messages", access=Access.APP, body=GroupPostBody,
              rate_limit="app_messages")
    async def post(self, call: Call, group_id: str, body: GroupPostBody
                   ) -> tuple[int, dict[str, Any]]:
        event_id = await self.groups.post(calling_app(call), group_id, body.message())
        return 200, {"event_id": event_id}
