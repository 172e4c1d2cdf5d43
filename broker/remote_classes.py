"""What other nodes attest of their own users: the class (verified or public) of a user of
another server, held in memory so that the policy's rules read it as they read local classes.

A node is believed about its own users only.  The class of ``@x:a.example`` is learned

- from a membership event whose sender's server is ``a.example`` (the event is signed by its
  sender's server, which the federation checks verified): a join carrying
  ``in.gov.broker.attestation`` states verified (or public), a join without one states public.
  An attestation in an event from any other server (a node vouching for another node's user) is
  ignored, counted per rule in :attr:`RemoteClasses.ignored` and logged;
- from ``a.example``'s answer to the federation query ``in.gov.broker.user_status``, asked by
  :meth:`RemoteClasses.ensure` when memory holds nothing fresh and a join, knock or invite of
  the user into an official group is decided, or their knock on a direct chat (whom a public
  user may not reach); an answer is waited for ``groups.remote_class_ask_seconds`` at most.
  The same question is asked for the reader another server names in a profile query
  (:meth:`RemoteClasses.reader`), who is believed to be reading only when they are a user of
  the server that asks.

Each statement holds for ``groups.remote_class_seconds`` from when it was made (the event's
``origin_server_ts``, never later than now; the moment an answer came), then the user is public
again until asked anew; a later statement replaces an earlier one, an older one is passed over.
Memory is bounded (the statements of the :data:`CAPACITY` users learned last).  Nothing here
is read from the database; only :meth:`ensure` goes to the network, and only the join, knock
and invite decisions about users of other servers and the profile queries naming a reader await
it.  See docs/admin/groups.md and docs/admin/profiles.md.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from broker.admin.classes import PUBLIC, VERIFIED
from broker.attestations import ATTESTATION
from protocol.errors import HttpResponseError
from protocol.events import Event
from protocol.identifiers import is_user_id
from protocol.signing import server_name_of

logger = logging.getLogger(__name__)

# The rules an attestation or an answer is passed over by (the names counted and logged).
NOT_HOME_SERVER = "attestation_not_from_home_server"
MALFORMED = "attestation_malformed"
ANSWER_MALFORMED = "user_status_malformed"
READER_NOT_OF_ORIGIN = "profile_reader_not_of_origin"
REASONS = (NOT_HOME_SERVER, MALFORMED, ANSWER_MALFORMED, READER_NOT_OF_ORIGIN)
# Users whose statements are kept (about 200 bytes each).
CAPACITY = 100_000
# How long a decision waits for the user's node to answer, by default (then the user is public
# for this decision, and the node is asked again at the next).
ASK_SECONDS = 10.0
# How long a profile query another server asks waits for the reader's node, at most (the asking
# server waits for its answer too: 10 s, if it is one of ours).
READER_WAIT_SECONDS = 5.0

# Asks a server for one of its users' status: (server, user ID) -> the answer's body.
AskStatus = Callable[[str, str], Awaitable[Any]]


@dataclass(frozen=True)
class RemoteClass:
    """One statement of a node about its user."""

    klass: str
    organisation: str
    since: int | None
    stated_ms: int


def parse_statement(found: Any) -> tuple[str, str, int | None] | None:
    """(class, organisation, since) of an attestation or a query answer; None if it is not
    one of the two shapes (verified with an organisation and a time, or public)."""
    if not isinstance(found, dict):
        return None
    klass, organisation, since = found.get("class"), found.get("organisation"), \
        found.get("since")
    if klass == PUBLIC:
        return PUBLIC, "", None
    if klass == VERIFIED and isinstance(organisation, str) and organisation and \
            isinstance(since, int) and not isinstance(since, bool):
        return VERIFIED, organisation, since
    return None


class RemoteClasses:
    def __init__(self, server_name: str, clock: Any, lifetime_seconds: int,
                 ask: AskStatus | None, capacity: int = CAPACITY,
                 ask_seconds: float = ASK_SECONDS) -> None:
        self.server_name = server_name
        self.ask_seconds = ask_seconds  # how long an answer is waited for
        self.clock = clock
        self.lifetime_ms = lifetime_seconds * 1000
        self.ask = ask  # None: federation is off, nobody is asked
        self.capacity = capacity
        self._known: OrderedDict[str, RemoteClass] = OrderedDict()
        self._asking: dict[str, defer.Deferred[None]] = {}
        # Attestations and answers passed over per rule (for monitoring; kept across restarts).
        self.ignored: Counter[str] = Counter()

    # -- reading (memory only) -----------------------------------------------------------------
    def statement(self, user_id: str) -> RemoteClass | None:
        """What the user's node stated of them, if it still holds."""
        found = self._known.get(user_id)
        if found is None or self.clock.time_ms() >= found.stated_ms + self.lifetime_ms:
            return None
        return found

    def verification_org(self, user_id: str) -> str | None:
        """The organisation a user of another server is verified for now; None: public."""
        found = self.statement(user_id)
        return found.organisation if found is not None and found.klass == VERIFIED else None

    def class_of(self, user_id: str) -> str:
        return VERIFIED if self.verification_org(user_id) is not None else PUBLIC

    def summary(self) -> dict[str, Any]:
        """For the policy document: how long a statement holds, how many users' are held, and
        what was passed over per rule."""
        ignored = {rule: self.ignored.get(rule, 0) for rule in REASONS}
        return {"cache_seconds": self.lifetime_ms // 1000, "users_held": len(self._known),
                "ignored": ignored}

    # -- learning from events ------------------------------------------------------------------
    def learn(self, event: Event) -> None:
        """Take in what a membership event (of any server, already checked) states."""
        if event.type != "m.room.member" or not event.state_key:
            return
        user_id, content = event.state_key, event.content
        home = server_name_of(user_id)
        if home == self.server_name:
            return
        if server_name_of(event.sender) != home:
            if ATTESTATION in content:
                self._ignore(NOT_HOME_SERVER, user_id, f"event {event.event_id} of"
                             f" {event.sender}")
            return
        if event.membership != "join":
            return  # only a join states the class
        parsed: tuple[str, str, int | None] = (PUBLIC, "", None)
        if ATTESTATION in content:
            found = parse_statement(content[ATTESTATION])
            if found is None:
                self._ignore(MALFORMED, user_id, f"event {event.event_id}")
            else:
                parsed = found
        klass, organisation, since = parsed
        stated = min(event.origin_server_ts, self.clock.time_ms())
        self._record(user_id, RemoteClass(klass, organisation, since, stated))

    # -- asking the user's node ----------------------------------------------------------------
    async def ensure(self, user_id: str, wait: float | None = None) -> None:
        """Make sure memory holds a fresh statement of a user of another server, asking their
        node when it does not (one question at a time per user: concurrent callers share
        it).  A node that cannot be asked, or does not answer within :attr:`ask_seconds`,
        leaves the user public for now, and is asked again next time.  ``wait``: return
        after that many seconds at the latest (the user public for this caller), while the
        question goes on for the others and its answer is kept."""
        if server_name_of(user_id) == self.server_name or self.ask is None or \
                self.statement(user_id) is not None:
            return
        pending = self._asking.get(user_id)
        if pending is None:
            pending = defer.ensureDeferred(self._ask(user_id))
            self._asking[user_id] = pending

            def finished(result: Any) -> Any:
                self._asking.pop(user_id, None)
                return result

            pending.addBoth(finished)
        waiter: defer.Deferred[None] = defer.Deferred()

        def done(result: Any) -> Any:
            if not waiter.called:  # not given up on (``wait``)
                waiter.callback(None)
            return result

        pending.addBoth(done)
        if wait is not None and wait < self.ask_seconds:
            waiter.addTimeout(wait, self.clock.reactor, onTimeoutCancel=lambda _r, _t: None)
        await waiter

    async def reader(self, origin: str, named: str) -> str:
        """The reader a profile query of server ``origin`` names (``named``, "" for none), as
        this node believes it: a user of ``origin`` itself (a node speaks for its own users),
        with a fresh statement of theirs in memory or asked of ``origin`` for
        :data:`READER_WAIT_SECONDS` at most; "" for none named.  A reader of any other server
        (or not a user ID) is passed over, counted and logged, and "" returned: the query is
        answered as one that names nobody."""
        if not named:
            return ""
        if origin == self.server_name or not is_user_id(named) or \
                server_name_of(named) != origin:
            self._ignore(READER_NOT_OF_ORIGIN, named, f"the profile query of {origin}")
            return ""
        await self.ensure(named, wait=READER_WAIT_SECONDS)
        return named

    async def _ask(self, user_id: str) -> None:
        assert self.ask is not None
        server = server_name_of(user_id)
        ask = self.ask

        async def answered() -> Any:
            return await ask(server, user_id)

        try:
            asked: defer.Deferred[Any] = defer.ensureDeferred(answered())
            asked.addTimeout(self.ask_seconds, self.clock.reactor)
            answer = await asked
        except HttpResponseError as e:
            if e.status != 404:
                logger.info("asking %s for %s's status failed: %s", server, user_id, e)
                return
            answer = {"user_id": user_id, "class": PUBLIC}  # not a user it vouches for
        except Exception as e:
            logger.info("asking %s for %s's status failed: %s", server, user_id, e)
            return
        found = parse_statement(answer)
        if found is None or answer.get("user_id") != user_id:
            self._ignore(ANSWER_MALFORMED, user_id, f"the answer of {server}")
            found = PUBLIC, "", None
        klass, organisation, since = found
        self._record(user_id, RemoteClass(klass, organisation, since, self.clock.time_ms()))

    # -- memory --------------------------------------------------------------------------------
    def _record(self, user_id: str, found: RemoteClass) -> None:
        old = self._known.get(user_id)
        if old is not None and old.stated_ms > found.stated_ms:
            return  # an older statement than the one held
        self._known[user_id] = found
        self._known.move_to_end(user_id)
        while len(self._known) > self.capacity:
            self._known.popitem(last=False)

    def _ignore(self, rule: str, user_id: str, where: str) -> None:
        self.ignored[rule] += 1
        logger.warning("passed over what %s states of %s: %s", where, user_id, rule)
