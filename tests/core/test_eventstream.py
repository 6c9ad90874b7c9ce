"""EventStreamDecoder: real binary frames in, frames out, however the bytes are chunked."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Iterable

import pytest
from botocore.eventstream import EventStreamBuffer  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from ki2api_tray.core.errors import ProtocolError
from ki2api_tray.core.eventstream import EventStreamDecoder, Frame, HeaderValue
from tests.frames import encode_frame, event_frame, exception_frame

# kiro-protocol.md §5, worked example.
WORKED_EXAMPLE_HEX = (
    "0000007c0000005c3bddcf780b3a6576656e742d74797065070016617373697374616e74526573706f6e73654576656e74"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74797065"
    "0700056576656e747b22636f6e74656e74223a224869227db02babdc"
)

# A typed header for frames tests/frames.py cannot build: (name, wire type 0-9, value).
TypedHeader = tuple[str, int, HeaderValue]

_FIXED = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


def encode_typed_headers(headers: Iterable[TypedHeader]) -> bytes:
    out = bytearray()
    for name, value_type, value in headers:
        raw_name = name.encode("utf-8")
        out += bytes([len(raw_name)]) + raw_name + bytes([value_type])
        if value_type in (0, 1):
            continue
        if value_type in _FIXED:
            out += struct.pack(_FIXED[value_type], value)
        elif value_type == 9:
            assert isinstance(value, bytes) and len(value) == 16
            out += value
        else:
            raw = value.encode("utf-8") if isinstance(value, str) else value
            assert isinstance(raw, bytes)
            out += struct.pack(">H", len(raw)) + raw
    return bytes(out)


def build_frame(raw_headers: bytes, payload: bytes, *, total: int | None = None) -> bytes:
    """Like tests.frames.encode_frame, but from raw header bytes and with an optional lying total length."""
    length = 12 + len(raw_headers) + len(payload) + 4 if total is None else total
    prelude = struct.pack(">II", length, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def decode_in_chunks(data: bytes, cuts: Iterable[int]) -> list[Frame]:
    decoder = EventStreamDecoder()
    frames: list[Frame] = []
    start = 0
    for cut in [*cuts, len(data)]:
        frames += decoder.feed(data[start:cut])
        start = cut
    decoder.close()
    return frames


def as_tuples(frames: Iterable[Frame]) -> list[tuple[dict[str, HeaderValue], bytes]]:
    return [(dict(frame.headers), frame.payload) for frame in frames]


def botocore_decode(data: bytes) -> list[tuple[dict[str, HeaderValue], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(dict(message.headers), message.payload) for message in buffer]


MULTIBYTE_STREAM = b"".join(
    [
        event_frame("assistantResponseEvent", {"content": "héllo 你好 🎉"}),
        event_frame("toolUseEvent", {"toolUseId": "t1", "name": "search", "input": '{"q":"naïve', "stop": False}),
        event_frame("toolUseEvent", {"toolUseId": "t1", "name": "search", "input": ' 日本"}', "stop": True}),
        encode_frame({}, b""),
        event_frame("contextUsageEvent", {"contextUsagePercentage": 12.5}),
        exception_frame("ThrottlingException", "Too many requests — réessayez 🙏"),
    ]
)


def test_decoder_worked_example_from_protocol_notes() -> None:
    data = bytes.fromhex(WORKED_EXAMPLE_HEX)

    frames = EventStreamDecoder().feed(data)

    assert len(frames) == 1
    assert frames[0].headers == {
        ":event-type": "assistantResponseEvent",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert frames[0].payload == b'{"content":"Hi"}'
    assert frames[0].event_type == "assistantResponseEvent"
    assert frames[0].message_type == "event"


def test_test_encoder_reproduces_worked_example() -> None:
    assert event_frame("assistantResponseEvent", {"content": "Hi"}).hex() == WORKED_EXAMPLE_HEX


def test_decoder_whole_multibyte_stream_matches_botocore() -> None:
    frames = decode_in_chunks(MULTIBYTE_STREAM, [])

    assert len(frames) == 6
    assert frames[0].payload.decode("utf-8") == '{"content":"héllo 你好 🎉"}'
    assert frames[3] == Frame(headers={}, payload=b"")
    assert frames[5].message_type == "exception"
    assert as_tuples(frames) == botocore_decode(MULTIBYTE_STREAM)


def test_decoder_every_split_point_matches_whole() -> None:
    whole = as_tuples(decode_in_chunks(MULTIBYTE_STREAM, []))

    for cut in range(len(MULTIBYTE_STREAM) + 1):
        assert as_tuples(decode_in_chunks(MULTIBYTE_STREAM, [cut])) == whole, f"split at byte {cut}"


def test_decoder_one_byte_at_a_time_matches_whole() -> None:
    cuts = range(1, len(MULTIBYTE_STREAM))

    assert as_tuples(decode_in_chunks(MULTIBYTE_STREAM, cuts)) == as_tuples(decode_in_chunks(MULTIBYTE_STREAM, []))


@pytest.mark.parametrize("seed", range(20))
def test_decoder_random_chunks_match_whole(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(MULTIBYTE_STREAM)), rng.randint(1, 40)))

    assert as_tuples(decode_in_chunks(MULTIBYTE_STREAM, cuts)) == as_tuples(decode_in_chunks(MULTIBYTE_STREAM, []))


def test_decoder_empty_feeds_return_nothing() -> None:
    decoder = EventStreamDecoder()

    assert decoder.feed(b"") == []
    decoder.close()


UUID = bytes(range(16))


@pytest.mark.parametrize(
    ("value_type", "value"),
    [
        (0, True),
        (1, False),
        (2, -128),
        (2, 127),
        (3, -32768),
        (4, 2**31 - 1),
        (5, -(2**63)),
        (6, b"\x00\xffraw"),
        (6, b""),
        (7, "héllo 你好 🎉"),
        (7, ""),
        (8, 1_767_225_600_123),
        (9, UUID),
    ],
)
def test_decoder_header_value_types(value_type: int, value: HeaderValue) -> None:
    data = build_frame(encode_typed_headers([("x-value", value_type, value), (":event-type", 7, "e")]), b"{}")

    (frame,) = EventStreamDecoder().feed(data)

    assert frame.headers == {"x-value": value, ":event-type": "e"}
    assert type(frame.headers["x-value"]) is type(value)
    assert as_tuples([frame]) == botocore_decode(data)


@pytest.mark.parametrize("size", [255, 256, 300, 1_000, 65_535])
@pytest.mark.parametrize("value_type", [6, 7])
def test_decoder_long_string_and_bytes_header_values(value_type: int, size: int) -> None:
    # The two-byte length prefix: values of 256 bytes and more need its high byte.
    value: HeaderValue = bytes(range(256)) * (size // 256) + bytes(size % 256)
    if value_type == 7:
        value = ("é" * size)[: size // 2] + "x" * (size % 2)  # `size` bytes of UTF-8
    data = build_frame(encode_typed_headers([("big", value_type, value), (":event-type", 7, "e")]), b"{}")

    (frame,) = EventStreamDecoder().feed(data)

    assert frame.headers == {"big": value, ":event-type": "e"}
    assert frame.payload == b"{}"
    assert as_tuples([frame]) == botocore_decode(data)


@pytest.mark.parametrize(
    ("value_type", "value"),
    [(0, True), (2, -1), (3, 300), (4, -70_000), (5, 2**40), (6, b"ab"), (7, "ab"), (8, 1), (9, bytes(range(16)))],
)
def test_decoder_header_value_ending_exactly_at_the_block_end(value_type: int, value: HeaderValue) -> None:
    raw = encode_typed_headers([("a", value_type, value)])

    (frame,) = EventStreamDecoder().feed(build_frame(raw, b""))
    assert frame.headers == {"a": value}
    if value_type != 0:  # one byte short of the value runs past the end
        with pytest.raises(ProtocolError, match="value of header 'a' runs past the end"):
            EventStreamDecoder().feed(build_frame(raw[:-1], b""))


@pytest.mark.parametrize(
    ("headers", "payload", "limit"),
    [
        pytest.param(b"", b"", 16, id="empty-frame-at-the-16-byte-minimum"),
        pytest.param(b"", b"x" * 112, 128, id="total-exactly-at-the-limit"),
        pytest.param(b"\x01a\x00", b"", 128, id="headers-filling-the-frame"),
    ],
)
def test_decoder_frames_at_exact_length_boundaries(headers: bytes, payload: bytes, limit: int) -> None:
    data = build_frame(headers, payload)
    decoder = EventStreamDecoder(max_message_bytes=limit)

    frames = decoder.feed(data + data)
    decoder.close()

    assert [(dict(f.headers), f.payload) for f in frames] == [botocore_decode(data)[0]] * 2


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (build_frame(b"", b"", total=15), "total length 15 is below the 16-byte minimum"),
        (build_frame(b"", b"x" * 113), "total length 129 is over the 128-byte limit"),
        (build_frame(b"\x01a\x00", b"", total=18), "headers length 3 does not fit in a 18-byte message"),
    ],
)
def test_decoder_one_byte_past_a_length_boundary_is_corrupt(data: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match="corrupt") as caught:
        EventStreamDecoder(max_message_bytes=128).feed(data)

    assert problem in caught.value.message


def with_byte(data: bytes, index: int, value: int) -> bytes:
    return data[:index] + bytes([value]) + data[index + 1 :]


GOOD = event_frame("assistantResponseEvent", {"content": "Hi"})


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (with_byte(GOOD, 3, GOOD[3] ^ 0x01), "prelude CRC mismatch"),
        (with_byte(GOOD, 10, GOOD[10] ^ 0x01), "prelude CRC mismatch"),
        (with_byte(GOOD, 40, GOOD[40] ^ 0x01), "message CRC mismatch"),
        (with_byte(GOOD, len(GOOD) - 1, GOOD[-1] ^ 0x01), "message CRC mismatch"),
        (b"HTTP/1.1 502 Bad Gateway\r\n\r\n<html>", "prelude CRC mismatch"),
        (build_frame(b"", b"", total=12), "total length 12 is below the 16-byte minimum"),
        (build_frame(b"", b"x" * 100, total=200), "total length 200 is over the 128-byte limit"),
        (build_frame(b"\x00" * 20, b"", total=30), "headers length 20 does not fit in a 30-byte message"),
        (build_frame(b"\x00\x07\x00\x00", b""), "header name is empty"),
        (build_frame(b"\x03abc", b""), "header name runs past the end"),
        (build_frame(b"\x01a\x0a", b""), "unknown value type 10"),
        (build_frame(b"\x01a\x07\x00\x09abc", b""), "value of header 'a' runs past the end"),
        (build_frame(b"\x01a\x05\x00\x00", b""), "value of header 'a' runs past the end"),
        (build_frame(b"\x01a\x09" + b"\x00" * 15, b""), "value of header 'a' runs past the end"),
        (build_frame(b"\x01a\x07\x00", b""), "value of header 'a' runs past the end"),
        (build_frame(b"\x01a\x07\x00\x02\xc3\x28", b""), "header 'a' is not valid UTF-8"),
        (build_frame(b"\x02\xff\xfe\x00", b""), "header name is not valid UTF-8"),
        (build_frame(b"\x01a\x00\x01a\x01", b""), "header 'a' appears twice"),
    ],
)
def test_decoder_corruption_raises_protocol_error(data: bytes, problem: str) -> None:
    decoder = EventStreamDecoder(max_message_bytes=128)

    with pytest.raises(ProtocolError, match="corrupt") as caught:
        decoder.feed(data)

    assert problem in caught.value.message
    assert caught.value.status == 502


def test_decoder_error_names_frame_number_after_returning_intact_frames() -> None:
    corrupted = GOOD * 2 + with_byte(GOOD, 40, GOOD[40] ^ 0x01)
    decoder = EventStreamDecoder()

    intact = decoder.feed(corrupted)

    assert len(intact) == 2  # the client still gets what Kiro sent before the damage
    with pytest.raises(
        ProtocolError, match=r"message CRC mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\) in frame 3"
    ):
        decoder.close()
    with pytest.raises(ProtocolError):
        decoder.feed(GOOD)


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        (GOOD[:5], "only 5 of the 12 prelude bytes arrived"),
        (GOOD[:-1], f"only {len(GOOD) - 1} of its {len(GOOD)} bytes arrived"),
    ],
)
def test_decoder_close_with_truncated_tail_raises(tail: bytes, problem: str) -> None:
    decoder = EventStreamDecoder()
    assert [frame.payload for frame in decoder.feed(GOOD + tail)] == [b'{"content":"Hi"}']

    with pytest.raises(ProtocolError, match="ended in the middle of frame 2") as caught:
        decoder.close()

    assert problem in caught.value.message


def test_decoder_is_poisoned_after_an_error() -> None:
    decoder = EventStreamDecoder()
    with pytest.raises(ProtocolError):
        decoder.feed(b"\x00" * 16)

    with pytest.raises(ProtocolError, match="already failed.*prelude CRC mismatch"):
        decoder.feed(GOOD)
    with pytest.raises(ProtocolError, match="already failed"):
        decoder.close()


def test_decoder_rejects_a_limit_below_the_minimum_frame() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        EventStreamDecoder(max_message_bytes=15)


def test_decoder_ten_thousand_frames() -> None:
    frames_in = [event_frame("assistantResponseEvent", {"content": f"token {i} 🎉"}) for i in range(10_000)]
    data = b"".join(frames_in)
    decoder = EventStreamDecoder()

    frames = [frame for start in range(0, len(data), 4096) for frame in decoder.feed(data[start : start + 4096])]
    decoder.close()

    assert len(frames) == 10_000
    assert frames[9_999].payload.decode("utf-8") == '{"content":"token 9999 🎉"}'


# --- properties -------------------------------------------------------------------------------------------------


def outcome(data: bytes, cuts: Iterable[int]) -> list[tuple[dict[str, HeaderValue], bytes]] | str:
    """The frames decoded from `data` fed in pieces, or the message of the ProtocolError it raised."""
    try:
        return as_tuples(decode_in_chunks(data, cuts))
    except ProtocolError as error:
        assert error.status == 502
        return error.message


@given(data=st.binary(max_size=300), cut_seed=st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_decoder_arbitrary_bytes_give_the_same_answer_however_chunked(data: bytes, cut_seed: random.Random) -> None:
    cuts = sorted(cut_seed.sample(range(len(data) + 1), min(len(data) + 1, cut_seed.randint(0, 10))))

    chunked, whole = outcome(data, cuts), outcome(data, [])

    assert chunked == whole
    if isinstance(whole, str):
        assert whole.startswith(("Kiro's event stream is corrupt: ", "Kiro's event stream ended in the middle of"))
        assert "frame 1" in whole  # random bytes never pass for a whole frame first
    else:
        assert whole == botocore_decode(data)


@given(payload=st.binary(max_size=200), cut_seed=st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_decoder_valid_prelude_with_garbage_headers_gives_the_frame_or_a_header_error(
    payload: bytes, cut_seed: random.Random
) -> None:
    # Random bytes almost never pass the prelude CRC; this reaches the header parser with junk.
    headers_length = cut_seed.randint(0, len(payload))
    data = build_frame(payload[:headers_length], payload[headers_length:])
    cuts = sorted(cut_seed.sample(range(len(data) + 1), cut_seed.randint(0, 5)))

    result = outcome(data, cuts)

    assert result == outcome(data, [])
    if isinstance(result, str):
        # Both CRCs are right, so only the header block can be what is wrong.
        assert result.startswith("Kiro's event stream is corrupt: ") and result.endswith(" in frame 1.")
        assert "CRC" not in result and "header" in result
    else:
        ((headers, body),) = result
        assert body == payload[headers_length:]
        assert result == botocore_decode(data)


header_names = st.text(min_size=1, max_size=20).filter(lambda name: len(name.encode("utf-8")) <= 255)
header_values: st.SearchStrategy[tuple[int, HeaderValue]] = st.one_of(
    st.booleans().map(lambda value: (0 if value else 1, value)),
    st.integers(-(2**7), 2**7 - 1).map(lambda value: (2, value)),
    st.integers(-(2**15), 2**15 - 1).map(lambda value: (3, value)),
    st.integers(-(2**31), 2**31 - 1).map(lambda value: (4, value)),
    st.integers(-(2**63), 2**63 - 1).map(lambda value: (5, value)),
    st.binary(max_size=40).map(lambda value: (6, value)),
    st.text(max_size=40).map(lambda value: (7, value)),
    st.integers(-(2**63), 2**63 - 1).map(lambda value: (8, value)),
    st.binary(min_size=16, max_size=16).map(lambda value: (9, value)),
)
frame_specs = st.tuples(st.dictionaries(header_names, header_values, max_size=6), st.binary(max_size=100))


@given(specs=st.lists(frame_specs, max_size=8), cut_seed=st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_decoder_random_frames_round_trip(
    specs: list[tuple[dict[str, tuple[int, HeaderValue]], bytes]], cut_seed: random.Random
) -> None:
    data = b"".join(
        build_frame(encode_typed_headers((name, kind, value) for name, (kind, value) in headers.items()), payload)
        for headers, payload in specs
    )
    cuts = sorted(cut_seed.sample(range(len(data) + 1), min(len(data) + 1, cut_seed.randint(0, 30))))

    decoded = as_tuples(decode_in_chunks(data, cuts))

    expected = [({name: value for name, (_, value) in headers.items()}, payload) for headers, payload in specs]
    assert decoded == expected
    assert decoded == botocore_decode(data)
