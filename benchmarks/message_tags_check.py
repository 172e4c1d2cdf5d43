"""What the message tags add to each send and to each event a filter looks at (per call, in
microseconds): ``MessageTags.check`` on an untagged message, on a tagged one, on one with an
organisation's tag, and ``EventFilter.allows`` with and without a tags filter.

    .venv/bin/python benchmarks/message_tags_check.py [--calls 200000]
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker.config import TagsConfig  # noqa: E402
from broker.filtering import TAGS_FILTER, EventFilter  # noqa: E402
from broker.message_tags import TAGS_FIELD, MessageTags  # noqa: E402


def per_call_us(func: Callable[[], Any], calls: int) -> float:
    """The best of five runs of ``calls`` calls, per call."""
    return min(timeit.repeat(func, number=calls, repeat=5)) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    calls = parser.parse_args().calls
    tags = MessageTags(TagsConfig(custom=("audit",), organisations={"mha": ("cabinet",)}),
                       {"@vera:x.test": "mha"}.get)
    plain = {"msgtype": "m.text", "body": "hello"}
    tagged = {**plain, TAGS_FIELD: ["confidential", "priority"]}
    organisation = {**plain, TAGS_FIELD: ["cabinet"]}
    everything = EventFilter(room_event=True)
    by_tag = EventFilter({TAGS_FILTER: ["priority"]}, room_event=True)
    rows = {
        "check, no tags": lambda: tags.check("@vera:x.test", "m.room.message", plain),
        "check, two standard tags": lambda: tags.check("@vera:x.test", "m.room.message",
                                                       tagged),
        "check, an organisation's tag": lambda: tags.check("@vera:x.test", "m.room.message",
                                                           organisation),
        "filter without tags": lambda: everything.allows("m.room.message", "@vera:x.test",
                                                         False, "!r:x.test", tagged),
        "filter on a tag": lambda: by_tag.allows("m.room.message", "@vera:x.test", False,
                                                 "!r:x.test", tagged),
    }
    for name, func in rows.items():
        print(f"{name:32} {per_call_us(func, calls):.3f} µs")


if __name__ == "__main__":
    main()
