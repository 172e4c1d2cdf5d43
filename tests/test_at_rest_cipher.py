"""The at-rest cipher: sealed values hide their text, open only under their key and context,
and fail loudly (never garbage) when altered; clear values written before a key was set read
as they are; key files say which key is which."""

from __future__ import annotations

import base64

import pytest

from storage.at_rest import (
    EVENTS_JSON,
    FILE_CHUNK,
    FILE_HEADER_BYTES,
    TO_DEVICE_CONTENT,
    AtRest,
    DataKey,
    Tampered,
    UnknownKey,
    clear_size,
    format_keyring,
    parse_keyring,
    sealed_key_id,
)

MARKER = "zebra-marker-8813"
KEY = DataKey.generate()


def sealed_file(at_rest: AtRest, data: bytes, piece: int = 1000) -> bytes:
    return b"".join(at_rest.seal_chunks(data[i:i + piece] for i in range(0, len(data), piece)))


def opened_file(at_rest: AtRest, stored: bytes) -> bytes:
    head, rest = stored[:FILE_HEADER_BYTES], stored[FILE_HEADER_BYTES:]
    size = FILE_CHUNK + 16
    pieces = iter([rest[i:i + size] for i in range(0, len(rest), size)])
    return b"".join(at_rest.open_chunks(pieces, len(stored), head))


def test_a_sealed_value_hides_its_text_and_opens_back() -> None:
    at_rest = AtRest([KEY])
    stored = at_rest.seal(EVENTS_JSON, f'{{"body":"{MARKER}"}}')
    assert MARKER not in stored
    assert sealed_key_id(stored) == KEY.key_id
    assert at_rest.open(EVENTS_JSON, stored) == f'{{"body":"{MARKER}"}}'


def test_each_seal_uses_a_fresh_nonce() -> None:
    at_rest = AtRest([KEY])
    assert at_rest.seal(EVENTS_JSON, "{}") != at_rest.seal(EVENTS_JSON, "{}")


def test_with_no_key_values_are_written_clear() -> None:
    assert AtRest().seal(EVENTS_JSON, '{"a":1}') == '{"a":1}'


def test_a_clear_value_written_before_the_key_was_set_reads_as_it_is() -> None:
    assert AtRest([KEY]).open(EVENTS_JSON, '{"a":1}') == '{"a":1}'


def test_a_value_sealed_with_an_old_key_reads_while_the_keyring_holds_it() -> None:
    old = AtRest([KEY]).seal(EVENTS_JSON, '{"a":1}')
    assert AtRest([DataKey.generate(), KEY]).open(EVENTS_JSON, old) == '{"a":1}'


def test_a_value_under_a_key_the_keyring_lacks_is_refused() -> None:
    stored = AtRest([KEY]).seal(EVENTS_JSON, "{}")
    with pytest.raises(UnknownKey, match=KEY.key_id):
        AtRest([DataKey.generate()]).open(EVENTS_JSON, stored)


def test_a_sealed_value_without_any_keyring_is_refused() -> None:
    with pytest.raises(UnknownKey, match="off"):
        AtRest().open(EVENTS_JSON, AtRest([KEY]).seal(EVENTS_JSON, "{}"))


def test_a_tampered_value_is_an_error_not_garbage() -> None:
    at_rest = AtRest([KEY])
    stored = at_rest.seal(EVENTS_JSON, f'{{"body":"{MARKER}"}}')
    blob = bytearray(base64.b64decode(stored[13:]))
    blob[-1] ^= 1
    tampered = stored[:13] + base64.b64encode(bytes(blob)).decode()
    with pytest.raises(Tampered):
        at_rest.open(EVENTS_JSON, tampered)


def test_a_value_moved_to_another_column_does_not_open() -> None:
    at_rest = AtRest([KEY])
    with pytest.raises(Tampered):
        at_rest.open(TO_DEVICE_CONTENT, at_rest.seal(EVENTS_JSON, "{}"))


@pytest.mark.parametrize("size", [0, 1, FILE_CHUNK - 1, FILE_CHUNK, FILE_CHUNK + 1,
                                  3 * FILE_CHUNK + 5])
def test_a_sealed_file_opens_back_whole_and_knows_its_clear_size(size: int) -> None:
    at_rest = AtRest([KEY])
    data = (MARKER.encode() * (size // len(MARKER) + 1))[:size]
    stored = sealed_file(at_rest, data, piece=70_000)
    assert size < len(MARKER) or MARKER.encode() not in stored
    assert opened_file(at_rest, stored) == data
    assert clear_size(stored[:FILE_HEADER_BYTES], len(stored)) == size


def test_a_file_cut_after_a_whole_chunk_is_refused() -> None:
    at_rest = AtRest([KEY])
    stored = sealed_file(at_rest, b"x" * (2 * FILE_CHUNK))
    with pytest.raises(Tampered):
        opened_file(at_rest, stored[:FILE_HEADER_BYTES + FILE_CHUNK + 16])


def test_a_file_with_a_flipped_byte_is_refused() -> None:
    at_rest = AtRest([KEY])
    stored = bytearray(sealed_file(at_rest, b"y" * 5000))
    stored[FILE_HEADER_BYTES + 10] ^= 0x40
    with pytest.raises(Tampered):
        opened_file(at_rest, bytes(stored))


def test_a_clear_file_reads_as_it_is() -> None:
    data = b"clear bytes, written before the key"
    assert b"".join(AtRest([KEY]).open_chunks(iter([data[8:]]), len(data), data[:8])) == data


def test_a_keyring_text_reads_back_in_order() -> None:
    second = DataKey.generate()
    assert parse_keyring(format_keyring([KEY, second]), "keys") == [KEY, second]


def test_a_bare_base64_key_is_a_keyring_of_one() -> None:
    assert parse_keyring(KEY.encoded(), "BROKER_AT_REST_KEY") == [KEY]


def test_a_key_line_whose_id_does_not_match_its_key_is_refused() -> None:
    with pytest.raises(ValueError, match="keys:1: the key's ID is"):
        parse_keyring(f"00000000 {KEY.encoded()}\n", "keys")


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="not a base64 32-byte key"):
        parse_keyring(base64.b64encode(b"short").decode(), "keys")


def test_an_empty_keyring_is_refused() -> None:
    with pytest.raises(ValueError, match="holds no key"):
        parse_keyring("# nothing\n", "keys")
