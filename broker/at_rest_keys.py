"""Where the node's data keys for encryption at rest come from, and the key file on disk.

The keyring is read from ``at_rest.key_file`` or, without it, from the ``BROKER_AT_REST_KEY``
environment variable (the same text as a key file, or one bare base64 key); never from the
database.  With neither, encryption at rest is off.  A running node reads its key file again
when it changes (checked every ``RELOAD_SECONDS``), which is how a rotation run by
``broker keys at-rest rotate`` reaches it without a restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import task

from broker.config import ConfigError, NodeConfig
from storage.at_rest import AtRest, DataKey, format_keyring, parse_keyring

logger = logging.getLogger(__name__)

ENV_KEY = "BROKER_AT_REST_KEY"
RELOAD_SECONDS = 5.0


def read_key_file(path: Path) -> list[DataKey]:
    """The keys of a key file; ValueError (one line) when it is missing or malformed."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError as e:
        raise ValueError(f"the at-rest key file {path} does not exist") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the at-rest key file {path}: {e}") from e
    return parse_keyring(text, str(path))


def load_keyring(config: NodeConfig, environ: Mapping[str, str] | None = None) -> AtRest:
    """The node's keyring (empty: encryption at rest off); ConfigError with one clear line."""
    env = os.environ if environ is None else environ
    if config.at_rest_key_file is not None:
        try:
            keys = read_key_file(config.at_rest_key_file)
        except ValueError as e:
            raise ConfigError("at_rest.key_file", str(e)) from e
        mode = config.at_rest_key_file.stat().st_mode & 0o077
        if mode:
            logger.warning("the at-rest key file %s is readable by others (mode %o): chmod 600",
                           config.at_rest_key_file, mode)
        return AtRest(keys)
    if env.get(ENV_KEY):
        try:
            return AtRest(parse_keyring(env[ENV_KEY], ENV_KEY))
        except ValueError as e:
            raise ConfigError(ENV_KEY, str(e)) from e
    return AtRest()


def write_key_file(path: Path, keys: Sequence[DataKey], *, replace: bool) -> None:
    """Write ``keys`` (the first seals) to ``path``, mode 0600, through a temporary file and a
    rename; FileExistsError if it exists and ``replace`` is False."""
    if not replace and path.exists():
        raise FileExistsError(f"{path} exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, format_keyring(keys).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class KeyFileWatcher:
    """Reads the key file again when it changes, into the node's keyring (a new current key
    seals from then on; a malformed file is logged and the keys in memory kept)."""

    def __init__(self, path: Path, at_rest: AtRest) -> None:
        self.path = path
        self.at_rest = at_rest
        self._seen = self._stamp()
        self._loop: task.LoopingCall | None = None

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def check(self) -> bool:
        """Read the file again if it changed; whether the keyring changed."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        try:
            keys = read_key_file(self.path)
        except ValueError as e:
            logger.error("keeping the at-rest keys in memory: %s", e)
            return False
        if keys == list(self.at_rest.keys):
            return False
        self.at_rest.replace_keys(keys)
        logger.info("at-rest keys read again from %s: sealing with %s", self.path,
                    keys[0].key_id)
        return True

    def start(self, reactor: Any) -> None:
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = reactor
        self._loop.start(RELOAD_SECONDS, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
