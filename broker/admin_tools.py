"""Account administration that runs without a live node (used by the ``broker user`` command)."""

from __future__ import annotations

from broker.at_rest_keys import load_keyring
from broker.auth import PasswordHashing
from broker.clock import real_clock
from broker.config import NodeConfig
from protocol.identifiers import is_new_localpart
from storage.database import Database, DatabaseConfig, IntegrityError, fired_result
from storage.migrations import apply_migrations
from storage.users import UserStore


def normalise_user_id(user: str, server_name: str) -> str:
    """A full user ID from a localpart or user ID; ValueError if it is not valid here."""
    if user.startswith("@"):
        localpart, _, server = user[1:].partition(":")
        if server != server_name:
            raise ValueError(f"{user} does not belong to this node ({server_name})")
    else:
        localpart = user
    if not is_new_localpart(localpart):
        raise ValueError(
            f"invalid user name {localpart!r}: use lower-case letters, digits and ._=-/+")
    return f"@{localpart}:{server_name}"


def open_database(config: NodeConfig) -> Database:
    """The node's database for a command, with the node's at-rest keyring (ConfigError)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(
        DatabaseConfig(engine=config.database_engine, path=str(config.database_path),
                       dsn=config.database_dsn),
        synchronous=True,
        at_rest=load_keyring(config),
    )
    apply_migrations(db, real_clock().time_ms())
    return db


def create_account(config: NodeConfig, user: str, password: str, *, admin: bool,
                   now_ms: int) -> str:
    """Create an account (its creation time is ``now_ms``); ValueError if it cannot be."""
    user_id = normalise_user_id(user, config.server_name)
    if len(password) < 8:
        raise ValueError("password must be at least 8 characters")
    db = open_database(config)
    try:
        store = UserStore(db)
        password_hash = PasswordHashing().hash_sync(password)
        try:
            fired_result(
                store.create_user(user_id, password_hash, now_ms, is_admin=admin))
        except IntegrityError as e:
            raise ValueError(f"{user_id} already exists") from e
    finally:
        db.close()
    return user_id
