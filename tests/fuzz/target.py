"""The node under fuzz: its URL, a logged-in account with a room, and its log.

``FuzzTarget`` keeps one authenticated account (access token, device, a room it created with a
message, an alias and a tag, an uploaded file, a filter, a key backup, account data, a push
rule) so that generated requests reach the code behind
authentication; when a generated request ends the session (logout, deactivation, password
change, device deletion) it registers a new account, and after one that may take the account out of
its room or its power in it (leave, kick, ban, upgrade, a state change) it creates a new room.
``new_log_text`` returns what the node logged since the last call, so a failure can be paired
with the traceback the node wrote for it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

#: What each account sets up under a fixed name (``eventType``/``stateKey`` name its membership).
NAMED = {"type": "m.fuzz", "tag": "u.fuzz", "kind": "override", "ruleId": "fuzz.rule",
         "keyName": "displayname", "receiptType": "m.read", "eventType": "m.room.member"}


@dataclass
class FuzzTarget:
    base_url: str
    log_path: Path | None = None
    token: str = ""
    user_id: str = ""
    device_id: str = ""
    room_id: str = ""
    event_id: str = ""
    media_id: str = ""
    filter_id: str = ""
    backup_version: str = ""
    room_alias: str = ""
    accounts: int = 0
    session: requests.Session = field(default_factory=requests.Session)
    _log_offset: int = 0

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def new_account(self) -> None:
        """Register a fresh account and create a room it is joined to."""
        localpart = "fuzz" + uuid.uuid4().hex[:12]
        body = self._post("/_matrix/client/v3/register", {
            "username": localpart, "password": "fuzz horse battery 1",
            "auth": {"type": "m.login.dummy"}})
        self.token = body["access_token"]
        self.user_id = body["user_id"]
        self.device_id = body["device_id"]
        self.media_id = self._request("POST", "/_matrix/media/v3/upload", data=b"fuzz",
                                      headers={"Content-Type": "text/plain"}
                                      )["content_uri"].rsplit("/", 1)[1]
        self.filter_id = self._request("POST", self._user_path("filter"),
                                       json={"room": {"timeline": {"limit": 5}}})["filter_id"]
        self.backup_version = self._post("/_matrix/client/v3/room_keys/version", {
            "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
            "auth_data": {"public_key": "fuzz", "signatures": {}}})["version"]
        self._request("PUT", self._user_path(f"account_data/{NAMED['type']}"),
                      json={"fuzz": True})
        self._request("PUT", f"/_matrix/client/v3/pushrules/global/{NAMED['kind']}/"
                      f"{NAMED['ruleId']}", json={"actions": ["notify"], "conditions": []})
        self.accounts += 1
        self.new_room()

    def new_room(self) -> None:
        """Create a room the account is joined to, holding one message of the account."""
        self.room_id = self._request("POST", "/_matrix/client/v3/createRoom",
                                     json={"name": "fuzz", "preset": "private_chat"})["room_id"]
        self.event_id = self._request(
            "PUT", f"/_matrix/client/v3/rooms/{quote(self.room_id)}/send/m.room.message/"
            f"{uuid.uuid4().hex}", json={"msgtype": "m.text", "body": "fuzz"})["event_id"]
        server = self.user_id.split(":", 1)[1]
        self.room_alias = f"#fuzz{uuid.uuid4().hex[:12]}:{server}"
        self._request("PUT", f"/_matrix/client/v3/directory/room/{quote(self.room_alias)}",
                      json={"room_id": self.room_id})
        self._request("PUT", self._user_path(f"rooms/{quote(self.room_id)}/tags/{NAMED['tag']}"),
                      json={"order": 0.5})

    def session_alive(self) -> bool:
        response = self.session.get(self.base_url + "/_matrix/client/v3/account/whoami",
                                    headers=self.headers(), timeout=10)
        return response.status_code == 200

    def owned_path_parameters(self, names: tuple[str, ...]) -> dict[str, str]:
        """Real values for the path parameters that name the account's own user, device, room,
        message, media, filter and key backup, so generated requests get past the ownership
        checks and reach existing resources."""
        known = {"userId": self.user_id, "roomId": self.room_id, "deviceId": self.device_id,
                 "roomIdOrAlias": self.room_id, "eventId": self.event_id,
                 "serverName": self.user_id.split(":", 1)[1], "mediaId": self.media_id,
                 "filterId": self.filter_id, "version": self.backup_version,
                 "roomAlias": self.room_alias}
        return {name: known[name] for name in names if name in known}

    def named_path_parameters(self, names: tuple[str, ...]) -> dict[str, str]:
        """The owned values, and the names of things the account has set (its account data,
        tag and push rule, its membership as the state to read), so that reads find them."""
        known = {**NAMED, "stateKey": self.user_id}
        return {**self.owned_path_parameters(names),
                **{name: known[name] for name in names if name in known}}

    def new_log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            data = log.read()
        self._log_offset += len(data)
        return data.decode("utf-8", errors="replace")

    def _user_path(self, tail: str) -> str:
        return f"/_matrix/client/v3/user/{quote(self.user_id)}/{tail}"

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._request("POST", path, json=body)

    def _request(self, method: str, path: str, **options: Any) -> Any:
        headers = {**self.headers(), **options.pop("headers", {})}
        response = self.session.request(method, self.base_url + path, headers=headers,
                                        timeout=30, **options)
        response.raise_for_status()
        return response.json()


def traceback_line(log_text: str) -> str:
    """The last exception line of the last traceback in ``log_text`` ('' when none)."""
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if not starts:
        return ""
    for line in lines[starts[-1] + 1:]:
        text = line.strip()
        if text and not line.startswith((" ", "\t")) and ":" in text and "File " not in text:
            return text[:300]
    return lines[-1].strip()[:300]
