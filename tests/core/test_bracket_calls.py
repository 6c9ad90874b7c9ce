"""BracketCallParser: `[Called NAME with args: {...}]` written as text becomes a ToolCall."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ki2api_tray.core.bracket_calls import BracketCallParser
from ki2api_tray.core.model import TextDelta, ToolCall

NAMES = {"Read": "Read", "Bash": "Bash", "read_file": "Read", "web-search": "web-search"}


def counter() -> Callable[[], str]:
    numbers: Iterator[int] = iter(range(1, 1000))
    return lambda: f"call_{next(numbers)}"


def parse(chunks: list[str]) -> tuple[str, list[tuple[str, str, str]]]:
    """Feed chunks, flush; return (visible text, [(id, name, arguments)])."""
    parser = BracketCallParser(NAMES, counter())
    events: list[TextDelta | ToolCall] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.flush())
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls = [(e.id, e.name, e.arguments) for e in events if isinstance(e, ToolCall)]
    return text, calls


CASES = [
    (
        'Reading. [Called Read with args: {"path": "a.txt"}] Done.',
        "Reading.  Done.",
        [("call_1", "Read", '{"path": "a.txt"}')],
    ),
    ("[called Bash With ARGS:{}]", "", [("call_1", "Bash", "{}")]),
    ('[Called  Bash\nwith  args:   {"c": 1}  ]', "", [("call_1", "Bash", '{"c": 1}')]),
    ('[Called read_file with args: {"p": 1}]', "", [("call_1", "Read", '{"p": 1}')]),
    ("[Called web-search with args: {}]", "", [("call_1", "web-search", "{}")]),
    (
        '[Called Bash with args: {"cmd": "echo \\"}{\\" ]", "n": {"deep": [1, {"x": "}"}]}}]',
        "",
        [("call_1", "Bash", '{"cmd": "echo \\"}{\\" ]", "n": {"deep": [1, {"x": "}"}]}}')],
    ),
    (
        "[Called Read with args: {}][Called Bash with args: {}]",
        "",
        [("call_1", "Read", "{}"), ("call_2", "Bash", "{}")],
    ),
    ("[1] [[Called Read with args: {}]", "[1] [", [("call_1", "Read", "{}")]),
    ('[Called Nope with args: {"a": 1}]', '[Called Nope with args: {"a": 1}]', []),
    ('[Called Read with args: {"a":}]', '[Called Read with args: {"a":}]', []),
    ('[Called Read with args: {"a": 1} and more', '[Called Read with args: {"a": 1} and more', []),
    ('[Called Read with args: {"a": "cut', '[Called Read with args: {"a": "cut', []),
    ("[Called Read with args: [1, 2]]", "[Called Read with args: [1, 2]]", []),
    ("[Called Read without args]", "[Called Read without args]", []),
    ("[Calling all]", "[Calling all]", []),
    ("a [link](x) [", "a [link](x) [", []),
    ("plain text", "plain text", []),
]


@pytest.mark.parametrize(("text", "visible", "calls"), CASES)
def test_bracket_calls_whole_text(text: str, visible: str, calls: list[tuple[str, str, str]]) -> None:
    assert parse([text]) == (visible, calls)


@pytest.mark.parametrize(("text", "visible", "calls"), CASES)
def test_bracket_calls_one_char_per_chunk(text: str, visible: str, calls: list[tuple[str, str, str]]) -> None:
    assert parse(list(text)) == (visible, calls)


@pytest.mark.parametrize(("text", "visible", "calls"), CASES)
def test_bracket_calls_every_two_way_split(text: str, visible: str, calls: list[tuple[str, str, str]]) -> None:
    for cut in range(len(text) + 1):
        assert parse([text[:cut], text[cut:]]) == (visible, calls), f"split at {cut}"


def test_bracket_calls_hold_text_until_bracket_closes() -> None:
    parser = BracketCallParser(NAMES, counter())
    assert parser.feed("Let me look. [Call") == [TextDelta("Let me look. ")]
    assert parser.feed('ed Read with args: {"path": "') == []
    assert parser.feed('x"}') == []
    assert parser.feed("] ok") == [ToolCall("call_1", "Read", '{"path": "x"}'), TextDelta(" ok")]


@pytest.mark.parametrize(
    ("chunk", "released"),
    [
        ("[Calx", "[Calx"),
        ("[Called Unknown ", "[Called Unknown "),
        ("[Called Read with args: x", "[Called Read with args: x"),
        ("[Called " + "a" * 100, "[Called " + "a" * 100),
    ],
)
def test_bracket_calls_release_text_once_it_cannot_be_a_call(chunk: str, released: str) -> None:
    assert BracketCallParser(NAMES, counter()).feed(chunk) == [TextDelta(released)]


def test_bracket_calls_escape_split_across_chunks() -> None:
    # The backslash ends one chunk and the quote it escapes starts the next: the string must not end there.
    text, calls = parse(['[Called Bash with args: {"c": "a\\', '"}"}]'])
    assert (text, calls) == ("", [("call_1", "Bash", '{"c": "a\\"}"}')])
