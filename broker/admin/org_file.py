"""The organisations file (``config/organisations.yaml``): reading it with the line of every
value, so that each error names the line and the field::

    organisations.yaml:12: organisations[3].parent: unknown organisation 'mha.xx'

The file holds one key, ``organisations``: a list of organisations, each with the fields of
``POST /_broker/admin/v1/organisations`` (``id``, ``name``, ``parent``, ``names``,
``email_domains``, ``settings``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from broker.admin.model import EntryError

_INDEXED = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class OrganisationsFileError(Exception):
    """What is wrong with the file, in one line naming the file, the line and the field."""


@dataclass(frozen=True)
class OrganisationsFile:
    path: Path
    entries: list[Any]
    digest: str  # SHA-256 of the file's bytes
    lines: dict[tuple[Any, ...], int]  # (key or index, ...) -> 1-based line of the value

    def line_of(self, path: tuple[Any, ...]) -> int:
        """The line of the value at ``path``, or of its nearest enclosing value."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def error(self, error: EntryError) -> OrganisationsFileError:
        """The error of an entry as the file's one-line error."""
        path: tuple[Any, ...] = ("organisations", error.index)
        for name, index in _INDEXED.findall(error.field):
            path += (int(index),) if index else (name,)
        return OrganisationsFileError(f"{self.path.name}:{self.line_of(path)}: {error.message}")


def _lines(node: yaml.Node, path: tuple[Any, ...], found: dict[tuple[Any, ...], int]) -> None:
    found[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.start_mark.line)
            _lines(value, path + (name,), found)
            found[path + (name,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, path + (index,), found)


def read_organisations_file(path: Path) -> OrganisationsFile:
    """Read and parse the file; :class:`OrganisationsFileError` if it is missing, not YAML,
    or not a mapping with an ``organisations`` list (the entries are checked by
    :func:`broker.admin.organisations.check_entries`)."""
    if not path.is_file():
        raise OrganisationsFileError(f"{path}: the organisations file does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except UnicodeDecodeError as e:
        raise OrganisationsFileError(f"{path.name}: is not UTF-8 text ({e})") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise OrganisationsFileError(f"{path.name}{line}: is not valid YAML: {problem}") from e
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _lines(node, (), lines)
    if not isinstance(data, dict):
        raise OrganisationsFileError(f"{path.name}:1: expected a mapping with the key"
                                     " 'organisations'")
    for key in data:
        if key != "organisations":
            raise OrganisationsFileError(f"{path.name}:{lines.get((key,), 1)}: {key}: unknown"
                                         " key (expected: organisations)")
    entries = data.get("organisations")
    if not isinstance(entries, list):
        raise OrganisationsFileError(f"{path.name}:{lines.get(('organisations',), 1)}:"
                                     " organisations: expected a list of organisations")
    return OrganisationsFile(path, entries, hashlib.sha256(raw).hexdigest(), lines)
