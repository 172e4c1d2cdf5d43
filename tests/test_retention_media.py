"""Media of expired events, on both engines and the node's clock: when the retention purge
prunes the events, the local media that only they used (``url``, ``info.thumbnail_url``, an
encrypted attachment's ``file.url``) is deleted, its rows, its file and its thumbnails, and
counted; media another event still uses (a younger message, a state event), a profile's
avatar, a user's own image pack in account data, another server's media and media uploaded before references were kept stay; files a
crash left behind are removed at the next run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, threads

from broker.media.files import write_atomically
from storage.media import MediaRecord, ThumbnailRecord
from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine, engines, run_for
from tests.retention_room import TXN, Room
from tests.storage_helpers import result_of

LIFETIME_S = 3600
RETENTION = {"enabled": True, "default_policy": {"max_lifetime": f"{LIFETIME_S}s"},
             "purge_interval": "10m"}
CONTENT = b"scanned letter " * 100
THUMBNAIL = b"small " * 10

engine = engines({"retention": RETENTION})


@pytest.fixture(autouse=True)
def files_on_this_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake reactor runs no pool threads: file work runs on the calling thread."""
    monkeypatch.setattr(threads, "deferToThread",
                        lambda f, *args, **kw: defer.maybeDeferred(f, *args, **kw))


def upload(local: InProcessNode, media_id: str) -> tuple[Path, Path]:
    """A stored upload with one thumbnail, written as the node writes them: their paths."""
    files, store = local.node.media.files, local.node.stores.media
    content = files.content_path(media_id)
    thumbnail = files.thumbnail_path(media_id, 32, 32, "scale", "image/png")
    write_atomically(content, iter([CONTENT]), at_rest=files.at_rest)
    write_atomically(thumbnail, iter([THUMBNAIL]), at_rest=files.at_rest)
    result_of(store.store_media(MediaRecord(media_id, "@alice:clock.test", "image/png", None,
                                            len(CONTENT), "", local.node.clock.time_ms())))
    result_of(store.store_thumbnail(ThumbnailRecord(media_id, 32, 32, "scale", "image/png",
                                                    len(THUMBNAIL))))
    return content, thumbnail


def mxc(media_id: str, server: str = "clock.test") -> str:
    return f"mxc://{server}/{media_id}"


def send(room: Room, content: dict[str, Any]) -> str:
    return str(room.ok("PUT", f"{room.path}/send/m.room.message/m{next(TXN)}",
                       content)["event_id"])


def image(media_id: str, server: str = "clock.test") -> dict[str, Any]:
    return {"msgtype": "m.image", "body": "letter.png", "url": mxc(media_id, server)}


def purge(local: InProcessNode) -> int:
    return local.settle(local.node.retention_purge.purge(), turns=200)


def held(local: InProcessNode, media_id: str) -> bool:
    return result_of(local.node.stores.media.get_media(media_id)) is not None


def expire_and_purge(local: InProcessNode) -> None:
    run_for(local, LIFETIME_S + 1)
    purge(local)


def test_media_only_an_expired_event_used_goes_with_its_file_and_thumbnails(
        engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    content, thumbnail = upload(local, "Letter0001")
    send(room, image("Letter0001"))
    expire_and_purge(local)
    assert not held(local, "Letter0001")
    assert result_of(local.node.stores.media.get_thumbnails("Letter0001")) == []
    assert not content.exists() and not thumbnail.exists()
    counts = local.node.retention_purge.counts
    assert (counts.media, counts.media_bytes) == (1, len(CONTENT) + len(THUMBNAIL))


def test_a_thumbnail_url_and_an_encrypted_attachments_url_count_as_uses(engine: Engine
                                                                        ) -> None:
    local = engine.node()
    room = Room(local)
    for media_id in ("Thumb00001", "Sealed0001"):
        upload(local, media_id)
    send(room, {"msgtype": "m.file", "body": "minutes.pdf",
                "file": {"url": mxc("Sealed0001"), "v": "v2"},
                "info": {"thumbnail_url": mxc("Thumb00001")}})
    expire_and_purge(local)
    assert not held(local, "Thumb00001") and not held(local, "Sealed0001")


def test_media_a_younger_event_still_uses_stays(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    content, _ = upload(local, "Letter0001")
    send(room, image("Letter0001"))
    run_for(local, LIFETIME_S / 2)
    send(room, image("Letter0001"))  # forwarded again
    run_for(local, LIFETIME_S / 2 + 1)
    assert purge(local) == 1
    assert held(local, "Letter0001") and content.exists()


def test_media_a_state_event_uses_stays(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    upload(local, "Avatar0001")
    room.ok("PUT", f"{room.path}/state/m.room.avatar/", {"url": mxc("Avatar0001")})
    send(room, image("Avatar0001"))
    expire_and_purge(local)
    assert held(local, "Avatar0001")


def test_a_profiles_avatar_stays(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    upload(local, "Avatar0001")
    send(room, image("Avatar0001"))
    result_of(local.node.stores.users.set_profile_field(
        local.node.user_id("alice"), "avatar_url", mxc("Avatar0001")))
    expire_and_purge(local)
    assert held(local, "Avatar0001")


def test_a_users_own_image_pack_in_account_data_keeps_its_image(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    upload(local, "Emote00001")
    send(room, image("Emote00001"))
    user = local.node.user_id("alice")
    pack = {"images": {"wave": {"url": mxc("Emote00001")}}}
    room.ok("PUT", f"/_matrix/client/v3/user/{user}/account_data/im.ponies.user_emotes", pack)
    expire_and_purge(local)
    assert held(local, "Emote00001")


def test_an_image_a_users_pack_no_longer_names_goes_with_its_expired_event(engine: Engine
                                                                           ) -> None:
    local = engine.node()
    room = Room(local)
    upload(local, "Emote00001")
    send(room, image("Emote00001"))
    user = local.node.user_id("alice")
    path = f"/_matrix/client/v3/user/{user}/account_data/im.ponies.user_emotes"
    room.ok("PUT", path, {"images": {"wave": {"url": mxc("Emote00001")}}})
    room.ok("PUT", path, {"images": {}})
    expire_and_purge(local)
    assert not held(local, "Emote00001")


def test_another_servers_media_of_the_same_id_leaves_ours_alone(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    content, _ = upload(local, "Letter0001")
    send(room, image("Letter0001", server="elsewhere.test"))
    expire_and_purge(local)
    assert held(local, "Letter0001") and content.exists()


def test_media_uploaded_before_references_were_kept_stays(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    upload(local, "Letter0001")
    # As after an upgrade: this media may be used by events written before migration 191.
    local.node.db.run_sync("start", lambda cur: cur.execute(
        "UPDATE media_references_start SET after_ts = ?", (local.node.clock.time_ms(),)))
    send(room, image("Letter0001"))
    expire_and_purge(local)
    assert held(local, "Letter0001")


def test_files_a_crash_left_are_removed_at_the_next_run(engine: Engine,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    local = engine.node()
    room = Room(local)
    content, _ = upload(local, "Letter0001")
    send(room, image("Letter0001"))
    run_for(local, LIFETIME_S + 1)

    async def crash(media_id: str) -> None:
        raise RuntimeError("the node stops here")

    files = local.node.media.files
    remove_media = files.remove_media
    monkeypatch.setattr(files, "remove_media", crash)
    with pytest.raises(RuntimeError):
        purge(local)
    assert not held(local, "Letter0001") and content.exists()
    monkeypatch.setattr(files, "remove_media", remove_media)
    purge(local)
    assert not content.exists()
    assert local.node.retention_purge.counts.media == 1


def test_the_policy_document_counts_the_media_deleted(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    upload(local, "Letter0001")
    send(room, image("Letter0001"))
    expire_and_purge(local)
    purge_section = local.node.policy_document.document()["retention"]["purge"]
    assert (purge_section["media_deleted"], purge_section["media_bytes_freed"]) == (
        1, len(CONTENT) + len(THUMBNAIL))
