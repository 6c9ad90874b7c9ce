"""A strict fake of the Kiro backend for tests: real HTTP on loopback, real event-stream frames.

Start it with `running_fake_kiro()` (or the fixtures in tests/fixtures_kiro.py), create accounts, write
their token files, script replies and faults, and read back what the client sent. See kiro-protocol.md §11.
"""

from __future__ import annotations

from . import scenarios
from .accounts import (
    Account,
    Accounts,
    client_id_hash,
    format_expiry,
    profile_file_path,
    token_file_json,
    token_file_path,
    write_client_registration,
    write_profile_file,
    write_token_file,
)
from .catalog import MODEL_IDS
from .replies import Chunking, ErrorReply, Event, Reply, StreamReply
from .server import CHAT_PATH, FakeKiro, RecordedRequest, Rejection, running_fake_kiro
from .validation import BAD_BEARER, BODY_INVALID, IMPROPER, INVALID_MODEL, NO_PROFILE, TOO_LONG, Limits

__all__ = [
    "BAD_BEARER",
    "BODY_INVALID",
    "CHAT_PATH",
    "IMPROPER",
    "INVALID_MODEL",
    "MODEL_IDS",
    "NO_PROFILE",
    "TOO_LONG",
    "Account",
    "Accounts",
    "Chunking",
    "ErrorReply",
    "Event",
    "FakeKiro",
    "Limits",
    "RecordedRequest",
    "Rejection",
    "Reply",
    "StreamReply",
    "client_id_hash",
    "format_expiry",
    "profile_file_path",
    "running_fake_kiro",
    "scenarios",
    "token_file_json",
    "token_file_path",
    "write_client_registration",
    "write_profile_file",
    "write_token_file",
]
