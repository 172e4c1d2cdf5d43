"""On-disk media layout and atomic writes: nothing half-written ever sits under a real name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.media.files import MediaFiles, TooLarge, write_atomically


def test_content_is_laid_out_in_two_levels_by_media_id(tmp_path: Path) -> None:
    files = MediaFiles(tmp_path)
    assert files.content_path("AbCdEfGh") == tmp_path / "local_content" / "Ab" / "Cd" / "EfGh"


def test_thumbnail_path_names_size_method_and_type(tmp_path: Path) -> None:
    path = MediaFiles(tmp_path).thumbnail_path("AbCdEfGh", 32, 24, "crop", "image/jpeg")
    assert path == tmp_path / "local_thumbnails" / "Ab" / "Cd" / "EfGh" / "32-24-crop.jpg"


def test_write_reports_size_and_sha256(tmp_path: Path) -> None:
    written = write_atomically(tmp_path / "f", iter([b"hello ", b"world"]))
    assert written.size == 11
    assert written.sha256 == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    assert (tmp_path / "f").read_bytes() == b"hello world"


def test_write_past_the_limit_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(TooLarge):
        write_atomically(tmp_path / "sub" / "f", iter([b"x" * 10, b"x" * 10]), limit=15)
    assert list((tmp_path / "sub").iterdir()) == []


def test_failing_source_keeps_the_previous_file_intact(tmp_path: Path) -> None:
    dest = tmp_path / "f"
    dest.write_bytes(b"old")

    def broken() -> Iterator[bytes]:
        yield b"new"
        raise OSError("client went away")

    with pytest.raises(OSError):
        write_atomically(dest, broken())
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_short_media_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        MediaFiles(tmp_path).content_path("abc")
