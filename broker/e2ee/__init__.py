"""Server side of end-to-end encryption: device keys, one-time and fallback keys, cross-signing,
to-device messages, key backup and device-list tracking.  The node stores and relays what it
cannot read; clients do the cryptography.

Each module of this package may define

    async def sync_fields(e2ee, requester, since: int | None, now: int) -> dict

returning top-level /sync fields it owns (``to_device``, ``device_lists``,
``device_one_time_keys_count``, ...); :func:`broker.e2ee.sync.collect` merges them.
"""
