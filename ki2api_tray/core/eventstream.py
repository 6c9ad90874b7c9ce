"""Incremental decoder for AWS's binary event stream (application/vnd.amazon.eventstream).

Layout per message: total length (u32 BE), headers length (u32 BE), prelude CRC-32, headers,
payload, message CRC-32. See kiro-protocol.md §5. Pure: bytes in, `Frame`s out, no I/O.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import ProtocolError

HeaderValue = bool | int | bytes | str


@dataclass(frozen=True)
class Frame:
    headers: Mapping[str, HeaderValue] = field(hash=False)
    payload: bytes = b""

    @property
    def message_type(self) -> str:
        value = self.headers.get(":message-type", "event")
        return value if isinstance(value, str) else "event"

    @property
    def event_type(self) -> str:
        value = self.headers.get(":event-type", "")
        return value if isinstance(value, str) else ""


PRELUDE_BYTES = 12
MIN_MESSAGE_BYTES = 16  # prelude + message CRC, with no headers and an empty payload
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the cap Kiro clients use (kiro-protocol.md §5)

_PRELUDE = struct.Struct(">III")
_MESSAGE_CRC = struct.Struct(">I")
_CORRUPT = "Kiro's event stream is corrupt: "

# Header value types with a fixed width (kiro-protocol.md §5). Types 0/1 carry no bytes,
# 6/7 a 2-byte length prefix; those are handled inline in `_parse_headers`.
_FIXED_WIDTH: dict[int, struct.Struct] = {
    2: struct.Struct(">b"),  # byte
    3: struct.Struct(">h"),  # short
    4: struct.Struct(">i"),  # integer
    5: struct.Struct(">q"),  # long
    8: struct.Struct(">q"),  # timestamp, milliseconds since the epoch
}
_UUID_TYPE = 9
_UUID_BYTES = 16


class EventStreamDecoder:
    """Push decoder: `feed()` chunks as they arrive, get back every frame they complete.

    Invariants: `_buffer` holds only the bytes of the frame not yet complete (it is compacted once per
    `feed`, so many small frames in one chunk cost no quadratic copying); a frame is returned only after
    both CRCs match and its headers parse. Header values: bools for types 0/1, ints for 2-5 and for
    timestamps (type 8, milliseconds), bytes for byte arrays (6) and UUIDs (9, the raw 16 bytes, as botocore
    does; use `uuid.UUID(bytes=...)` for text), str for strings (7).

    Any corruption raises `ProtocolError` and poisons the decoder: every later `feed` or `close` raises
    too. We never resynchronise (unlike some Kiro clients that skip a byte and retry) because a proxy
    must not guess frame boundaries inside model output: a "recovered" frame could be a fragment of
    text that happens to look like a header, and the client would get silently wrong content.
    Frames completed earlier in the same chunk as the corruption are still returned, so the client gets
    everything Kiro sent intact; the error is raised by the next `feed` or `close`.
    """

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if max_message_bytes < MIN_MESSAGE_BYTES:
            raise ValueError(f"max_message_bytes must be at least {MIN_MESSAGE_BYTES}, not {max_message_bytes}")
        self._max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self._frames_decoded = 0
        self._failure: str | None = None
        self._pending: ProtocolError | None = None

    def feed(self, data: bytes) -> list[Frame]:
        """Add `data` and return the frames it completes, in stream order (often none, sometimes many)."""
        self._raise_if_failed()
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        offset = 0
        try:
            with memoryview(buffer) as view:
                while len(buffer) - offset >= PRELUDE_BYTES:
                    total = self._check_prelude(view, offset)
                    if len(buffer) - offset < total:
                        break
                    frames.append(self._decode_message(view, offset, total))
                    self._frames_decoded += 1
                    offset += total
        except ProtocolError as exc:
            self._failure = exc.message
            buffer.clear()
            if not frames:
                raise
            self._pending = exc
        # Compact once per feed; the memoryview is released by now, so the bytearray may resize.
        del buffer[:offset]
        return frames

    def close(self) -> None:
        """Say the stream has ended; raises `ProtocolError` if it stopped inside a frame (or failed earlier)."""
        self._raise_if_failed()
        held = len(self._buffer)
        if held == 0:
            return
        frame_number = self._frames_decoded + 1
        if held < PRELUDE_BYTES:
            detail = f"only {held} of the {PRELUDE_BYTES} prelude bytes arrived"
        else:
            total = _PRELUDE.unpack_from(self._buffer)[0]
            detail = f"only {held} of its {total} bytes arrived"
        self._failure = f"Kiro's event stream ended in the middle of frame {frame_number}: {detail}."
        self._buffer.clear()
        raise ProtocolError(self._failure)

    def _raise_if_failed(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            raise pending
        if self._failure is not None:
            raise ProtocolError(f"The event stream decoder already failed and cannot continue. {self._failure}")

    def _check_prelude(self, view: memoryview, offset: int) -> int:
        """Validate the 12-byte prelude at `offset` and return the message's total length."""
        total, headers_length, stored_crc = _PRELUDE.unpack_from(view, offset)
        # The lengths are only trusted after the prelude CRC says they are what Kiro sent.
        computed_crc = zlib.crc32(view[offset : offset + 8])
        if computed_crc != stored_crc:
            raise self._corruption(f"prelude CRC mismatch (stored 0x{stored_crc:08x}, computed 0x{computed_crc:08x})")
        if total < MIN_MESSAGE_BYTES:
            raise self._corruption(f"total length {total} is below the {MIN_MESSAGE_BYTES}-byte minimum")
        if total > self._max_message_bytes:
            raise self._corruption(f"total length {total} is over the {self._max_message_bytes}-byte limit")
        if headers_length > total - MIN_MESSAGE_BYTES:
            raise self._corruption(f"headers length {headers_length} does not fit in a {total}-byte message")
        return int(total)

    def _decode_message(self, view: memoryview, offset: int, total: int) -> Frame:
        end = offset + total
        stored_crc = _MESSAGE_CRC.unpack_from(view, end - 4)[0]
        # The message CRC covers bytes 0..total-5; bytes 0..7 are already folded into the prelude CRC,
        # so continue from it instead of hashing the prelude twice.
        prelude_crc = _MESSAGE_CRC.unpack_from(view, offset + 8)[0]
        computed_crc = zlib.crc32(view[offset + 8 : end - 4], prelude_crc)
        if computed_crc != stored_crc:
            raise self._corruption(f"message CRC mismatch (stored 0x{stored_crc:08x}, computed 0x{computed_crc:08x})")
        headers_length = _PRELUDE.unpack_from(view, offset)[1]
        headers_end = offset + PRELUDE_BYTES + headers_length
        headers = self._parse_headers(bytes(view[offset + PRELUDE_BYTES : headers_end]))
        return Frame(headers=headers, payload=bytes(view[headers_end : end - 4]))

    def _parse_headers(self, block: bytes) -> dict[str, HeaderValue]:
        headers: dict[str, HeaderValue] = {}
        pos = 0
        end = len(block)
        while pos < end:
            name_length = block[pos]
            if name_length == 0:
                raise self._corruption(f"a header name is empty (at byte {pos} of the headers)")
            type_pos = pos + 1 + name_length
            if type_pos >= end:
                raise self._corruption(f"a header name runs past the end of the headers (at byte {pos})")
            name = self._decode_text(block[pos + 1 : type_pos], "a header name")
            if name in headers:
                raise self._corruption(f"header {name!r} appears twice")
            value_type = block[type_pos]
            pos = type_pos + 1
            value: HeaderValue
            if value_type == 7 or value_type == 6:
                start = pos + 2
                if start > end:
                    raise self._value_overrun(name)
                pos = start + ((block[pos] << 8) | block[pos + 1])
                if pos > end:
                    raise self._value_overrun(name)
                raw = block[start:pos]
                value = self._decode_text(raw, f"header {name!r}") if value_type == 7 else raw
            elif value_type == 0 or value_type == 1:
                value = value_type == 0
            elif value_type == _UUID_TYPE:
                start, pos = pos, pos + _UUID_BYTES
                if pos > end:
                    raise self._value_overrun(name)
                value = block[start:pos]
            elif value_type in _FIXED_WIDTH:
                layout = _FIXED_WIDTH[value_type]
                if pos + layout.size > end:
                    raise self._value_overrun(name)
                value = layout.unpack_from(block, pos)[0]
                pos += layout.size
            else:
                raise self._corruption(f"header {name!r} has unknown value type {value_type}")
            headers[name] = value
        return headers

    def _decode_text(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._corruption(f"{what} is not valid UTF-8") from None

    def _value_overrun(self, name: str) -> ProtocolError:
        return self._corruption(f"the value of header {name!r} runs past the end of the headers")

    def _corruption(self, detail: str) -> ProtocolError:
        return ProtocolError(f"{_CORRUPT}{detail} in frame {self._frames_decoded + 1}.")
