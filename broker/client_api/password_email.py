"""A first or forgotten password by email: ``POST /account/password/email/requestToken``
(the node sends the email itself and answers ``{"sid", "submit_url"}``) and the
``submit_url``, ``POST /_broker/client/v1/password/email/submitToken`` ``{"sid",
"client_secret", "token"}`` (the Identity Service API's ``submitToken``: ``{"success":
true}``).  Then ``POST /account/password`` with ``m.login.email.identity`` sets the password.
The rules are :mod:`broker.admin.password_by_email`.

``submit_url`` is absolute: under ``public_baseurl`` when the config sets it, else under the
scheme and ``Host`` of the request.
"""

from __future__ import annotations

from typing import Any

from broker.admin.password_by_email import PasswordByEmail
from broker.client_api import CLIENT_PREFIX
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint

SUBMIT_PATH = "/_broker/client/v1/password/email/submitToken"


class EmailTokenRequest(Body):
    client_secret: str
    email: str
    send_attempt: int
    next_link: str | None = None
    id_server: str | None = None
    id_access_token: str | None = None


class EmailTokenSubmission(Body):
    sid: str
    client_secret: str
    token: str


class PasswordEmailEndpoints(Endpoints):
    def __init__(self, by_email: PasswordByEmail, public_baseurl: str) -> None:
        self.by_email = by_email
        self.public_baseurl = public_baseurl.rstrip("/")

    def submit_url(self, call: Call) -> str:
        if self.public_baseurl:
            return f"{self.public_baseurl}{SUBMIT_PATH}"
        host = (call.request.getHeader(b"host") or b"localhost").decode("ascii", "replace")
        scheme = "https" if call.request.isSecure() else "http"
        return f"{scheme}://{host}{SUBMIT_PATH}"

    @endpoint("POST", f"{CLIENT_PREFIX}/account/password/email/requestToken",
              access=Access.PUBLIC, body=EmailTokenRequest)
    async def request_token(self, call: Call, body: EmailTokenRequest
                            ) -> tuple[int, dict[str, Any]]:
        sid = await self.by_email.request_token(call.client_ip, body.client_secret, body.email,
                                                body.send_attempt)
        return 200, {"sid": sid, "submit_url": self.submit_url(call)}

    @endpoint("POST", SUBMIT_PATH, access=Access.PUBLIC, body=EmailTokenSubmission)
    async def submit_token(self, call: Call, body: EmailTokenSubmission
                           ) -> tuple[int, dict[str, Any]]:
        await self.by_email.submit_token(call.client_ip, body.sid, body.client_secret,
                                         body.token)
        return 200, {"success": True}
