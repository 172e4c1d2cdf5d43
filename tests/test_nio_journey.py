"""A user's journey through rooms with matrix-nio: the calls a real app makes, one behaviour each.

Every test drives a real node process over HTTP with ``nio.AsyncClient``; the message round trip
runs on both database engines.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import nio

from tests.nio_helpers import (
    PASSWORD,
    create_room,
    ephemeral,
    expect,
    initial_sync,
    parked_sync,
    register,
    send_text,
    shared_room,
    sync_until,
    text_with_id,
    timeline,
    users,
)
from tests.node_harness import NodeProcess

PROMPT_DELIVERY_S = 1.0


def test_registration_gives_a_logged_in_device(node: NodeProcess) -> None:
    async def run() -> None:
        client = await register(node, device_name="phone")
        try:
            assert client.user_id.startswith("@") and client.user_id.endswith(node.server_name)
            assert client.access_token and client.device_id
            whoami = expect(await client.whoami(), nio.WhoamiResponse)
            assert whoami.user_id == client.user_id
            assert whoami.device_id == client.device_id
        finally:
            await client.close()
    asyncio.run(run())


def test_password_login_on_a_second_device_is_a_new_device_of_the_same_user(
        node: NodeProcess) -> None:
    async def run() -> None:
        first = await register(node)
        second = nio.AsyncClient(node.base_url, first.user_id)
        try:
            logged_in = expect(await second.login(PASSWORD, device_name="laptop"),
                               nio.LoginResponse)
            assert logged_in.user_id == first.user_id
            assert logged_in.device_id != first.device_id
            assert logged_in.access_token != first.access_token
            whoami = expect(await second.whoami(), nio.WhoamiResponse)
            assert (whoami.user_id, whoami.device_id) == (first.user_id, second.device_id)
        finally:
            await first.close()
            await second.close()
    asyncio.run(run())


def test_created_room_has_name_topic_and_invites_the_other_user(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            await initial_sync(bob)
            room_id = await create_room(alice, invite=[bob.user_id], name="Budget 2025",
                                        topic="Quarterly figures")
            invited = await sync_until(bob, lambda r: r.rooms.invite.get(room_id))
            states = invited.invite_state
            assert any(isinstance(e, nio.InviteNameEvent) and e.name == "Budget 2025"
                       for e in invited.invite_state), states
            assert any(isinstance(e, nio.InviteMemberEvent) and e.state_key == bob.user_id
                       and e.membership == "invite" for e in invited.invite_state), states

            name = expect(await alice.room_get_state_event(room_id, "m.room.name"),
                          nio.RoomGetStateEventResponse)
            topic = expect(await alice.room_get_state_event(room_id, "m.room.topic"),
                           nio.RoomGetStateEventResponse)
            assert name.content == {"name": "Budget 2025"}
            assert topic.content.get("topic") == "Quarterly figures"
    asyncio.run(run())


def test_invited_user_joins_and_both_are_joined_members(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            room_id = await shared_room(alice, bob)
            members = expect(await alice.joined_members(room_id), nio.JoinedMembersResponse)
            assert {m.user_id for m in members.members} == {alice.user_id, bob.user_id}
            rooms = expect(await bob.joined_rooms(), nio.JoinedRoomsResponse)
            assert room_id in rooms.rooms
    asyncio.run(run())


async def message_round_trip(node: NodeProcess) -> None:
    """Create, invite, join, send; the other user receives it by long-poll sync promptly."""
    async with users(node, 2) as (alice, bob):
        room_id = await shared_room(alice, bob, name="Round trip")
        await initial_sync(bob)
        waiting = await parked_sync(bob)
        event_id = await send_text(alice, room_id, "hello over the wire")
        sent_at = time.monotonic()
        response = expect(await asyncio.wait_for(waiting, 20), nio.SyncResponse)
        delay = time.monotonic() - sent_at
        message = text_with_id(event_id)(response)
        assert message is not None, timeline(response, room_id)
        assert message.body == "hello over the wire" and message.sender == alice.user_id
        assert delay < PROMPT_DELIVERY_S, f"parked sync took {delay:.2f}s to deliver"


def test_message_reaches_the_other_user_by_long_poll_promptly(any_node: NodeProcess) -> None:
    asyncio.run(message_round_trip(any_node))


def test_message_sent_from_one_device_reaches_the_senders_other_device(
        node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 1) as (alice,):
            laptop = nio.AsyncClient(node.base_url, alice.user_id)
            try:
                expect(await laptop.login(PASSWORD, device_name="laptop"), nio.LoginResponse)
                room_id = await create_room(alice)
                await initial_sync(laptop)
                event_id = await send_text(alice, room_id, "note to self")
                message = await sync_until(laptop, text_with_id(event_id))
                assert message.body == "note to self"
            finally:
                await laptop.close()
    asyncio.run(run())


def test_resending_with_the_same_transaction_id_does_not_duplicate_the_message(
        node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 1) as (alice,):
            room_id = await create_room(alice)
            content = {"msgtype": "m.text", "body": "sent twice on a flaky network"}
            first = expect(await alice.room_send(room_id, "m.room.message", content, "tx-1"),
                           nio.RoomSendResponse)
            retry = expect(await alice.room_send(room_id, "m.room.message", content, "tx-1"),
                           nio.RoomSendResponse)
            assert retry.event_id == first.event_id
            history = expect(await alice.room_messages(room_id, limit=20),
                             nio.RoomMessagesResponse)
            assert bodies(history.chunk).count("sent twice on a flaky network") == 1
    asyncio.run(run())


def receipt_from(user_id: str, event_id: str) -> Any:
    def find(response: nio.SyncResponse) -> nio.Receipt | None:
        for room in response.rooms.join.values():
            for event in room.ephemeral:
                if isinstance(event, nio.ReceiptEvent):
                    for receipt in event.receipts:
                        if (receipt.user_id, receipt.event_id) == (user_id, event_id):
                            return receipt
        return None
    return find


def test_read_markers_show_up_as_a_read_receipt_for_the_other_user(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            room_id = await shared_room(alice, bob)
            event_id = await send_text(alice, room_id, "please read")
            await initial_sync(alice)
            expect(await bob.room_read_markers(room_id, event_id, event_id),
                   nio.RoomReadMarkersResponse)
            receipt = await sync_until(alice, receipt_from(bob.user_id, event_id))
            assert receipt.receipt_type == "m.read"
            assert receipt.timestamp > 0
    asyncio.run(run())


def test_read_marker_becomes_fully_read_account_data_for_the_reader(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            room_id = await shared_room(alice, bob)
            event_id = await send_text(alice, room_id, "mark me")
            await initial_sync(bob)
            expect(await bob.room_read_markers(room_id, event_id), nio.RoomReadMarkersResponse)

            def fully_read(response: nio.SyncResponse) -> str | None:
                room = response.rooms.join.get(room_id)
                for event in room.account_data if room else []:
                    if isinstance(event, nio.FullyReadEvent):
                        return str(event.event_id)
                return None
            assert await sync_until(bob, fully_read) == event_id
    asyncio.run(run())


def test_threaded_read_receipt_reaches_the_other_user(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            room_id = await shared_room(alice, bob)
            event_id = await send_text(alice, room_id, "read me too")
            await initial_sync(alice)
            expect(await bob.update_receipt_marker(room_id, event_id),
                   nio.UpdateReceiptMarkerResponse)
            receipt = await sync_until(alice, receipt_from(bob.user_id, event_id))
            assert receipt.receipt_type == "m.read"
            assert receipt.thread_id == "main"
    asyncio.run(run())


def test_typing_shows_up_for_the_other_user_and_stops(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            room_id = await shared_room(alice, bob)
            await initial_sync(bob)

            def typing_users(response: nio.SyncResponse) -> list[str] | None:
                for event in ephemeral(response, room_id):
                    if isinstance(event, nio.TypingNoticeEvent):
                        return list(event.users) or ["<nobody>"]
                return None

            expect(await alice.room_typing(room_id, True, 20_000), nio.RoomTypingResponse)
            assert await sync_until(bob, typing_users) == [alice.user_id]
            expect(await alice.room_typing(room_id, False), nio.RoomTypingResponse)
            assert await sync_until(bob, typing_users) == ["<nobody>"]
    asyncio.run(run())


def bodies(events: list[Any]) -> list[str]:
    return [e.body for e in events if isinstance(e, nio.RoomMessageText)]


def test_history_paginates_backwards_from_prev_batch_then_forwards(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            room_id = await shared_room(alice, bob)
            for n in range(5):
                await send_text(alice, room_id, f"m{n}")
            first = await initial_sync(bob, sync_filter={"room": {"timeline": {"limit": 2}}})
            room_timeline = first.rooms.join[room_id].timeline
            assert bodies(room_timeline.events) == ["m3", "m4"]
            assert room_timeline.limited and room_timeline.prev_batch

            back = expect(await bob.room_messages(room_id, room_timeline.prev_batch,
                                                  direction=nio.MessageDirection.back, limit=3),
                          nio.RoomMessagesResponse)
            assert bodies(back.chunk) == ["m2", "m1", "m0"]
            forward = expect(await bob.room_messages(room_id, back.end,
                                                     direction=nio.MessageDirection.front,
                                                     limit=3),
                             nio.RoomMessagesResponse)
            assert bodies(forward.chunk) == ["m0", "m1", "m2"]
    asyncio.run(run())


def test_custom_state_is_stored_and_read_back(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 1) as (alice,):
            room_id = await create_room(alice)
            content = {"classification": "confidential", "retention_days": 30}
            expect(await alice.room_put_state(room_id, "org.example.settings", content, "ops"),
                   nio.RoomPutStateResponse)
            read = expect(await alice.room_get_state_event(room_id, "org.example.settings", "ops"),
                          nio.RoomGetStateEventResponse)
            assert read.content == content
            missing = await alice.room_get_state_event(room_id, "org.example.settings", "other")
            assert isinstance(missing, nio.RoomGetStateEventError)
            assert missing.status_code == "M_NOT_FOUND"
    asyncio.run(run())


def test_member_without_power_cannot_rename_until_the_admin_raises_their_level(
        node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            room_id = await shared_room(alice, bob, name="Before")
            refused = await bob.room_put_state(room_id, "m.room.name", {"name": "Hijacked"})
            assert isinstance(refused, nio.RoomPutStateError), refused
            assert refused.status_code == "M_FORBIDDEN", refused

            levels = expect(await alice.room_get_state_event(room_id, "m.room.power_levels"),
                            nio.RoomGetStateEventResponse)
            raised = dict(levels.content)
            raised["users"] = {**raised.get("users", {}), bob.user_id: 50}
            expect(await alice.room_put_state(room_id, "m.room.power_levels", raised),
                   nio.RoomPutStateResponse)

            expect(await bob.room_put_state(room_id, "m.room.name", {"name": "After"}),
                   nio.RoomPutStateResponse)
            name = expect(await alice.room_get_state_event(room_id, "m.room.name"),
                          nio.RoomGetStateEventResponse)
            assert name.content == {"name": "After"}
    asyncio.run(run())


def test_redacted_message_comes_back_with_empty_content(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            room_id = await shared_room(alice, bob)
            event_id = await send_text(alice, room_id, "oops, secret")
            redaction = expect(await alice.room_redact(room_id, event_id, reason="mistake"),
                               nio.RoomRedactResponse)

            fetched = expect(await bob.room_get_event(room_id, event_id),
                             nio.RoomGetEventResponse)
            assert fetched.event.source["content"] == {}, fetched.event.source
            because = fetched.event.source.get("unsigned", {}).get("redacted_because", {})
            assert because.get("event_id") == redaction.event_id, fetched.event.source

            history = expect(await bob.room_messages(room_id, limit=20),
                             nio.RoomMessagesResponse)
            redacted = [e for e in history.chunk if e.event_id == event_id]
            assert redacted and redacted[0].source["content"] == {}, history.chunk
            assert isinstance(redacted[0], nio.RedactedEvent), redacted[0]
    asyncio.run(run())


def test_uploaded_file_downloads_byte_for_byte(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            data = os.urandom(5 * 1024)
            uploaded, _keys = await alice.upload(lambda *_: data, content_type="application/pdf",
                                                 filename="report.pdf", filesize=len(data))
            uri = expect(uploaded, nio.UploadResponse).content_uri
            assert uri.startswith(f"mxc://{node.server_name}/"), uri
            downloaded = expect(await bob.download(mxc=uri), nio.MemoryDownloadResponse)
            assert downloaded.body == data
            assert downloaded.content_type == "application/pdf"
    asyncio.run(run())


def test_leaving_user_sees_the_room_as_left_and_the_other_sees_the_leave(
        node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            room_id = await shared_room(alice, bob)
            await initial_sync(alice)
            await initial_sync(bob)
            expect(await bob.room_leave(room_id), nio.RoomLeaveResponse)

            left = await sync_until(bob, lambda r: r.rooms.leave.get(room_id))
            assert any(isinstance(e, nio.RoomMemberEvent) and e.state_key == bob.user_id
                       and e.membership == "leave" for e in left.timeline.events), left

            def leave_event(response: nio.SyncResponse) -> nio.RoomMemberEvent | None:
                return next((e for e in timeline(response, room_id)
                             if isinstance(e, nio.RoomMemberEvent)
                             and e.state_key == bob.user_id and e.membership == "leave"), None)
            seen = await sync_until(alice, leave_event)
            assert seen.sender == bob.user_id
            rooms = expect(await bob.joined_rooms(), nio.JoinedRoomsResponse)
            assert room_id not in rooms.rooms
    asyncio.run(run())


def test_logout_invalidates_the_access_token(node: NodeProcess) -> None:
    async def run() -> None:
        client = await register(node)
        try:
            token = client.access_token
            expect(await client.logout(), nio.LogoutResponse)
            client.access_token = token
            refused = await client.sync(timeout=0)
            assert isinstance(refused, nio.SyncError), refused
            assert refused.status_code == "M_UNKNOWN_TOKEN", refused
        finally:
            await client.close()
    asyncio.run(run())
