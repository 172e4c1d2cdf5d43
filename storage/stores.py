"""All stores over one Database, built once by the node (one attribute per store)."""

from __future__ import annotations

from storage.database import Database
from storage.users import UserStore


class Stores:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.users = UserStore(db)
