"""``POST /_broker/apps/v1/messages`` (send one message) and ``GET
/_broker/apps/v1/messages/{message_id}`` (its status), see :mod:`broker.apps.sending`.  The
body is at most ``apps.max_message_bytes`` (413 ``M_TOO_LARGE``); unknown fields are
refused, so a misspelt field is not silently dropped."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from broker.apps.recipients import RecipientRef
from broker.apps.sending import KINDS, AppMessage, AppMessages, Attachment
from broker.apps_api.calls import APPS_PREFIX, calling_app
from broker.client_api.media import with_upload_limit
from broker.errors import InvalidInput, MalformedContent
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, Route, endpoint

MAX_BODY_TEXT = 32_768
MAX_ATTACHMENTS = 10
MAX_KEY = 128
RECIPIENT_FORMS = ({"organisation", "employee_id"}, {"email"}, {"phone"})


class AttachmentBody(Body):
    content_uri: str
    filename: str
    mimetype: str


def strict(body: Body, where: str) -> None:
    if body.model_extra:
        name = next(iter(body.model_extra))
        raise MalformedContent(f"'{where}{name}': unknown field")


def recipient_of(value: Any, field: str = "to") -> RecipientRef:
    """A user ID, or an object of one of :data:`RECIPIENT_FORMS` (strings)."""
    if isinstance(value, str):
        return RecipientRef(user_id=value)
    if not isinstance(value, dict) or set(value) not in RECIPIENT_FORMS or not all(
            isinstance(v, str) and v for v in value.values()):
        raise MalformedContent(f"'{field}' must be a user ID, {{\"organisation\","
                               " \"employee_id\"}, {\"email\"} or {\"phone\"} (non-empty"
                               " strings)")
    return RecipientRef(**value)


class MessageBody(Body):
    to: str | dict[str, Any]
    kind: Literal["otp", "alert", "notification"]
    body: str
    format: Literal["plain", "html"] = "plain"
    tags: list[str] = []
    ttl_s: int | None = None
    attachments: list[AttachmentBody] = []
    idempotency_key: str | None = None

    @model_validator(mode="after")
    def _checked(self) -> MessageBody:
        strict(self, "")
        for index, attachment in enumerate(self.attachments):
            strict(attachment, f"attachments[{index}].")
        if not self.body.strip() and not self.attachments:
            raise InvalidInput("'body' must not be empty")
        if len(self.body) > MAX_BODY_TEXT:
            raise InvalidInput(f"'body' may be at most {MAX_BODY_TEXT} characters")
        if len(self.attachments) > MAX_ATTACHMENTS:
            raise InvalidInput(f"at most {MAX_ATTACHMENTS} 'attachments'")
        if self.idempotency_key is not None and not 0 < len(self.idempotency_key) <= MAX_KEY:
            raise InvalidInput(f"'idempotency_key' must be 1 to {MAX_KEY} characters")
        return self

    def message(self) -> AppMessage:
        assert self.kind in KINDS
        return AppMessage(recipient_of(self.to), self.kind, self.body, self.format == "html",
                          tuple(self.tags), self.ttl_s,
                          tuple(Attachment(a.content_uri, a.filename, a.mimetype)
                                for a in self.attachments), self.idempotency_key)


class AppMessageEndpoints(Endpoints):
    def __init__(self, messages: AppMessages, max_message_bytes: int) -> None:
        self.messages = messages
        self.max_message_bytes = max_message_bytes

    def routes(self) -> list[Route]:
        return with_upload_limit(super().routes(), ("AppMessageEndpoints.send",),
                                 self.max_message_bytes)

    @endpoint("POST", f"{APPS_PREFIX}/messages", access=Access.APP, body=MessageBody,
              rate_limit="app_messages")
    async def send(self, call: Call, body: MessageBody) -> tuple[int, dict[str, Any]]:
        message_id = await self.messages.send(calling_app(call), body.message())
        return 200, {"message_id": message_id}

    @endpoint("GET", f"{APPS_PREFIX}/messages/(?P<message_id>[^/]+)", access=Access.APP,
              rate_limit="app_messages")
    async def status(self, call: Call, message_id: str) -> tuple[int, dict[str, Any]]:
        return 200, dict(await self.messages.status(calling_app(call), message_id))
