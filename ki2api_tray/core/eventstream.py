"""Incremental decoder for AWS's binary event stream (application/vnd.amazon.eventstream).

Layout per message: total length (u32 BE), headers length (u32 BE), prelude CRC-32, headers,
payload, message CRC-32. See kiro-protocol.md §5.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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


# TODO(helper): EventStreamDecoder
