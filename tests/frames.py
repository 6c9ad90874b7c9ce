"""A test-only event-stream *encoder*, so fixtures and the fake Kiro send real binary frames."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any


def encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("ascii")
        raw_value = value.encode("utf-8")
        out += bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    return bytes(out)


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One message: prelude (lengths + CRC), headers, payload, message CRC (kiro-protocol.md §5)."""
    raw_headers = encode_headers(headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """An event the way Kiro sends it: compact JSON with sorted keys, three string headers."""
    data = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, data)


def exception_frame(exception_type: str, message: str) -> bytes:
    data = json.dumps({"message": message}, separators=(",", ":")).encode("utf-8")
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_frame(headers, data)
