"""Message tags: which tags a message may carry, checked on send from memory.

A message's tags are a list of names in the content field ``in.gov.broker.tags`` (the shape of
MSC2326's labels, in our namespace; see docs/api/message-tags.md).  In an encrypted room the
field sits in the cleartext part of ``m.room.encrypted`` content, as ``m.relates_to`` does, so
the server can check and filter it.  A name must be a standard tag (:data:`STANDARD_TAGS`), one
the node's config adds, or one the config gives the sender's organisation (held in memory by
the class cache).  An ``auto_delete`` message may give its lifetime in
``in.gov.broker.auto_delete_ms``, within the configured bounds; without it the default holds.

:meth:`MessageTags.check` reads only the content and memory (no database round trip) and
raises :class:`broker.errors.InvalidInput` with the refusal's name in
``in.gov.broker.reason``; refusals are counted per name (:attr:`MessageTags.refusals`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, NoReturn

from broker.config import STANDARD_TAGS, TagsConfig
from broker.errors import InvalidInput

logger = logging.getLogger(__name__)

TAGS_FIELD = "in.gov.broker.tags"
LIFETIME_FIELD = "in.gov.broker.auto_delete_ms"
AUTO_DELETE = "auto_delete"
# The error body's field naming why a send was refused (as the access policy's rules do).
REASON_FIELD = "in.gov.broker.reason"
# Event types whose content may carry tags (others are refused when they do).
TAGGED_TYPES = frozenset({"m.room.message", "m.room.encrypted", "m.sticker"})
MAX_TAGS = 16

# Refusal names (stable: clients read them, monitoring counts them).
MALFORMED = "malformed_message_tags"
UNKNOWN = "unknown_message_tag"
NOT_TAGGABLE = "tags_on_untagged_type"
LIFETIME = "auto_delete_lifetime"
REASONS = (MALFORMED, UNKNOWN, NOT_TAGGABLE, LIFETIME)


def tags_of(content: dict[str, Any]) -> list[str]:
    """The tags a content carries (none when the field is absent or not a list of strings)."""
    tags = content.get(TAGS_FIELD)
    if not isinstance(tags, list):
        return []
    return [tag for tag in tags if isinstance(tag, str)]


class MessageTags:
    def __init__(self, config: TagsConfig, organisation_of: Callable[[str], str | None]
                 ) -> None:
        """``organisation_of``: the organisation a user is verified in now, from memory (None
        for a public user)."""
        self.config = config
        self._organisation_of = organisation_of
        self._common = frozenset(STANDARD_TAGS) | frozenset(config.custom)
        self._by_organisation = {org: self._common | frozenset(names)
                                 for org, names in config.organisations.items()}
        self.refusals: Counter[str] = Counter()  # refused sends per reason (kept across restarts)
        # Told the sender and reason of each refused send (the statistics count them).
        self.refusal_listeners: list[Callable[[str, str], None]] = []

    def summary(self) -> dict[str, Any]:
        """What the policy document says of message tags: the tags allowed to everyone and to
        each organisation's members, the auto-delete bounds, and the refused sends since
        start per reason (every reason listed)."""
        config = self.config
        return {
            "standard": list(STANDARD_TAGS), "custom": list(config.custom),
            "organisations": {org: sorted(names) for org, names
                              in sorted(config.organisations.items())},
            "auto_delete_ms": {"default": config.auto_delete_default_ms,
                               "min": config.auto_delete_min_ms,
                               "max": config.auto_delete_max_ms},
            "refusals": {reason: self.refusals.get(reason, 0) for reason in REASONS},
        }

    def allowed_for(self, user_id: str) -> frozenset[str]:
        """Every tag ``user_id`` may put on a message."""
        org = self._organisation_of(user_id)
        found = self._by_organisation.get(org) if org is not None else None
        return self._common if found is None else found

    def check(self, user_id: str, event_type: str, content: dict[str, Any]) -> int | None:
        """Refuse a content whose tags are malformed or not allowed; the auto-delete lifetime
        in milliseconds for an ``auto_delete`` message, else None."""
        try:
            return self._checked(user_id, event_type, content)
        except InvalidInput as e:
            for listener in self.refusal_listeners:
                listener(user_id, str(e.extra.get(REASON_FIELD, "")))
            raise

    def _checked(self, user_id: str, event_type: str, content: dict[str, Any]) -> int | None:
        tags = content.get(TAGS_FIELD)
        lifetime = content.get(LIFETIME_FIELD)
        if tags is None and lifetime is None:
            return None
        if event_type not in TAGGED_TYPES:
            self._refuse(NOT_TAGGABLE, f"{event_type} events carry no message tags")
        if tags is None:
            tags = []
        if not isinstance(tags, list) or len(tags) > MAX_TAGS:
            self._malformed()
        try:
            common = self._common.issuperset(tags)  # the usual case: one C call
        except TypeError:  # an unhashable item
            self._malformed()
        if not common and not self.allowed_for(user_id).issuperset(tags):
            if not all(isinstance(tag, str) for tag in tags):
                self._malformed()
            allowed = self.allowed_for(user_id)
            unknown = [tag for tag in tags if tag not in allowed]
            self._refuse(UNKNOWN, f"Unknown message tag {unknown[0]!r}")
        if AUTO_DELETE not in tags:
            if lifetime is not None:
                self._refuse(LIFETIME, f"'{LIFETIME_FIELD}' needs the '{AUTO_DELETE}' tag")
            return None
        return self._lifetime(lifetime)

    def _lifetime(self, lifetime: Any) -> int:
        config = self.config
        if lifetime is None:
            return config.auto_delete_default_ms
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or \
                not config.auto_delete_min_ms <= lifetime <= config.auto_delete_max_ms:
            self._refuse(LIFETIME, f"'{LIFETIME_FIELD}' must be an integer from"
                         f" {config.auto_delete_min_ms} to {config.auto_delete_max_ms}")
        return int(lifetime)

    def _malformed(self) -> NoReturn:
        self._refuse(MALFORMED, f"'{TAGS_FIELD}' must be a list of at most {MAX_TAGS} tag"
                     " names")

    def _refuse(self, reason: str, message: str) -> NoReturn:
        self.refusals[reason] += 1
        logger.info("refused a send: %s: %s", reason, message)
        raise InvalidInput(message, **{REASON_FIELD: reason})
