"""ThinkingSplitter: prompt-tag reasoning at the start of a reply, split at any chunk boundary."""

from __future__ import annotations

import pytest

from ki2api_tray.core.model import TextDelta, ThinkingDelta
from ki2api_tray.core.thinking import ThinkingSplitter


def split(chunks: list[str]) -> tuple[str, str]:
    """Feed chunks, flush, and return (thinking, text) as the client would assemble them."""
    splitter = ThinkingSplitter()
    events: list[TextDelta | ThinkingDelta] = []
    for chunk in chunks:
        events.extend(splitter.feed(chunk))
    events.extend(splitter.flush())
    assert all(event.text for event in events), "no empty deltas"
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return thinking, text


CASES = [
    ("<thinking>plan it</thinking>\n\nThe answer.", "plan it", "The answer."),
    ("<think>short</think>rest", "short", "rest"),
    ("<reasoning>r\nr</reasoning>\n \n    indented code", "r\nr", "    indented code"),
    ("<thought>only thoughts</thought>", "only thoughts", ""),
    ("<thinking>a</thinking> same line", "a", "same line"),
    ("  \n\t<thinking>after whitespace</thinking>\nx", "after whitespace", "x"),
    ("<think>a</thinking>b</think>c", "a</thinking>b", "c"),
    ("<thinking>a</thinking>b</thinking>c", "a", "b</thinking>c"),
    ("<thinking>never closed </thin", "never closed </thin", ""),
    ("<thinking></thinking>\n\nempty thoughts", "", "empty thoughts"),
    ("Hello <thinking>late tag</thinking>", "", "Hello <thinking>late tag</thinking>"),
    ("<b>bold</b> start", "", "<b>bold</b> start"),
    ("<thinkingg>", "", "<thinkingg>"),
    ("<thin", "", "<thin"),
    ("  indented answer", "", "  indented answer"),
    ("   ", "", "   "),
    ("", "", ""),
]


@pytest.mark.parametrize(("reply", "thinking", "text"), CASES)
def test_thinking_splitter_whole_reply(reply: str, thinking: str, text: str) -> None:
    assert split([reply]) == (thinking, text)


@pytest.mark.parametrize(("reply", "thinking", "text"), CASES)
def test_thinking_splitter_one_char_per_chunk(reply: str, thinking: str, text: str) -> None:
    assert split(list(reply)) == (thinking, text)


@pytest.mark.parametrize(("reply", "thinking", "text"), CASES)
def test_thinking_splitter_every_two_way_split(reply: str, thinking: str, text: str) -> None:
    for cut in range(len(reply) + 1):
        assert split([reply[:cut], reply[cut:]]) == (thinking, text), f"split at {cut}"


def test_thinking_splitter_streams_thinking_before_closing_tag() -> None:
    splitter = ThinkingSplitter()
    assert splitter.feed("<thinking>first ") == [ThinkingDelta("first ")]
    assert splitter.feed("second") == [ThinkingDelta("second")]


def test_thinking_splitter_holds_back_only_a_possible_closing_tag() -> None:
    splitter = ThinkingSplitter()
    assert splitter.feed("<thinking>abc</thi") == [ThinkingDelta("abc")]
    assert splitter.feed("s is not it") == [ThinkingDelta("</this is not it")]
    assert splitter.feed("</thinking>\n\nDone") == [TextDelta("Done")]


@pytest.mark.parametrize(
    ("chunk", "released"),
    [
        ("Hi", [TextDelta("Hi")]),
        ("<p>", [TextDelta("<p>")]),
        ("<", []),
        ("<reason", []),
        ("\n\n", []),
        ("\n\nHi", [TextDelta("\n\nHi")]),
    ],
)
def test_thinking_splitter_decides_at_first_chunk(chunk: str, released: list[TextDelta]) -> None:
    assert ThinkingSplitter().feed(chunk) == released


def test_thinking_splitter_text_after_decision_passes_unchanged() -> None:
    splitter = ThinkingSplitter()
    splitter.feed("No thinking here. ")
    assert splitter.feed("<thinking>") == [TextDelta("<thinking>")]
    assert splitter.flush() == []
