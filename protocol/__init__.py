"""The Matrix protocol, pure: canonical JSON, content hashes, Ed25519 signing, redaction, room
versions, the event model, identifier grammar, authorization rules, power levels, state
resolution, PDU checks, server keys, X-Matrix request signing and server discovery.

No I/O and no imports from ``storage``, ``federation`` or ``broker``: everything else builds
on this package (``broker -> federation -> storage -> protocol``).
"""
