"""Stop strings, max_tokens and one-call-at-a-time, applied to neutral events (core/output_guard.py)."""

from __future__ import annotations

import pytest

from ki2api_tray.core.model import Finish, StreamEvent, TextDelta, ThinkingDelta, ToolCall, Usage
from ki2api_tray.core.output_guard import OutputGuard
from ki2api_tray.core.stop_sequences import StopMatcher
from ki2api_tray.core.tokencount import estimate_tokens


def run_matcher(stops: list[str], deltas: list[str]) -> tuple[list[str], str | None, int]:
    """What each delta releases, the match, and the most text ever held back at once."""
    matcher = StopMatcher(stops)
    released, most_held = [], 0
    for delta in deltas:
        released.append(matcher.feed(delta))
        most_held = max(most_held, len(matcher.held))
    if matcher.matched is None:
        released.append(matcher.flush())
    return released, matcher.matched, most_held


@pytest.mark.parametrize(
    ("stops", "deltas", "text", "matched"),
    [
        pytest.param(["o w"], ["hello world"], "hell", "o w", id="inside-one-delta"),
        pytest.param(["o w"], ["hell", "o", " ", "world"], "hell", "o w", id="split-over-three-deltas"),
        pytest.param(["END"], ["abc E", "N", "D tail"], "abc ", "END", id="split-at-end-of-delta"),
        pytest.param(["END"], ["abc EN", "X more"], "abc ENX more", None, id="false-start-released"),
        pytest.param(["xyz"], ["no match here"], "no match here", None, id="never-matches"),
        pytest.param(["abcd", "c"], ["ab", "cd"], "ab", "c", id="first-to-complete-wins"),
        pytest.param(["bc", "abcd"], ["abcd"], "a", "bc", id="earliest-end-in-one-delta"),
        pytest.param(["\n\n"], ["line one\n", "\nline two"], "line one", "\n\n", id="newline-stop-split"),
        pytest.param(["你好"], ["说你", "好吗"], "说", "你好", id="non-ascii"),
        pytest.param(["stop"], ["stop at once"], "", "stop", id="match-at-start"),
        pytest.param(["", "b"], ["abc"], "a", "b", id="empty-stop-ignored"),
    ],
)
def test_stop_matcher_finds_first_match(stops: list[str], deltas: list[str], text: str, matched: str | None) -> None:
    released, found, most_held = run_matcher(stops, deltas)
    assert "".join(released) == text
    assert found == matched
    assert most_held <= max(len(s) for s in stops) - 1


def test_stop_matcher_holds_back_only_a_possible_start() -> None:
    matcher = StopMatcher(["world"])
    assert matcher.feed("hello wo") == "hello "  # "wo" may become "world"
    assert matcher.held == "wo"
    assert matcher.feed("nder") == "wonder"
    assert matcher.held == ""


def test_stop_matcher_releases_nothing_after_a_match() -> None:
    matcher = StopMatcher(["."])
    assert matcher.feed("One. Two.") == "One"
    assert matcher.feed("Three") == ""
    assert matcher.flush() == ""


def texts(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def finish(events: list[StreamEvent]) -> Finish:
    ends = [e for e in events if isinstance(e, Finish)]
    assert len(ends) == 1, events
    return ends[0]


def feed_all(guard: OutputGuard, batches: list[list[StreamEvent]]) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for batch in batches:
        out += guard.feed(batch)
    return out


END = [Usage(10, 99), Finish("end_turn")]


def test_guard_stops_at_split_stop_string_and_reports_it() -> None:
    guard = OutputGuard(stop=["o w"], input_tokens=12)
    out = feed_all(guard, [[TextDelta("Echo: hell")], [TextDelta("o")], [TextDelta(" world")], END])
    assert texts(out) == "Echo: hell"
    assert finish(out) == Finish("stop_sequence", "o w")
    usage = next(e for e in out if isinstance(e, Usage))
    assert usage.input_tokens == 12 and usage.output_tokens == estimate_tokens("Echo: hell")
    assert guard.done


def test_guard_releases_held_text_before_a_tool_call_and_at_the_end() -> None:
    call = ToolCall("c1", "f", "{}")
    guard = OutputGuard(stop=["STOP"])
    out = feed_all(guard, [[TextDelta("ends with ST")], [call], [TextDelta("and S")], END])
    assert out == [TextDelta("ends with "), TextDelta("ST"), call, TextDelta("and "), TextDelta("S"), *END]


def test_guard_cuts_text_at_max_tokens() -> None:
    guard = OutputGuard(max_tokens=2)
    out = feed_all(guard, [[TextDelta("Echo: hello world, a long answer")], END])
    assert finish(out).reason == "max_tokens"
    assert 0 < len(texts(out)) < len("Echo: hello world")
    assert estimate_tokens(texts(out)) <= 2
    usage = next(e for e in out if isinstance(e, Usage))
    assert usage.output_tokens <= 2


@pytest.mark.parametrize("limit", [1, 3, 10, 50, 150, 400])
def test_guard_never_reports_more_than_the_limit(limit: int) -> None:
    words = [TextDelta(f"word{i} ") for i in range(600)]
    out = OutputGuard(max_tokens=limit).feed([*words, *END])
    assert finish(out).reason == "max_tokens"
    assert estimate_tokens(texts(out)) <= limit
    assert next(e for e in out if isinstance(e, Usage)).output_tokens <= limit


def test_guard_counts_thinking_toward_the_limit() -> None:
    out = OutputGuard(max_tokens=5).feed([ThinkingDelta("x" * 400), TextDelta("answer"), *END])
    assert texts(out) == "" and finish(out).reason == "max_tokens"


def test_guard_drops_a_tool_call_that_would_cross_the_limit_whole() -> None:
    big = ToolCall("c1", "write_file", '{"content": "' + "x" * 2000 + '"}')
    out = OutputGuard(max_tokens=50).feed([TextDelta("Writing it."), big, *END])
    assert not [e for e in out if isinstance(e, ToolCall)]
    assert "was cut off by the max_tokens limit" in texts(out) and "write_file" in texts(out)
    assert finish(out).reason == "max_tokens"


def test_guard_drops_a_call_whose_arguments_hold_a_lone_surrogate() -> None:
    # Valid JSON from Kiro can carry a lone "\ud83d" escape; the note counts it instead of failing on it.
    big = ToolCall("c1", "write_file", '{"content": "' + "x" * 2000 + '\ud83d"}')
    out = OutputGuard(max_tokens=50).feed([big, *END])
    assert texts(out).startswith("[ki2api: your call to the tool `write_file` was cut off by the max_tokens limit")
    assert "after 2018 bytes of arguments" in texts(out)
    assert finish(out).reason == "max_tokens"


def test_guard_keeps_a_tool_call_under_the_limit() -> None:
    call = ToolCall("c1", "get_weather", '{"city": "Paris"}')
    out = OutputGuard(max_tokens=500).feed([TextDelta("Checking."), call, Usage(1, 2), Finish("tool_use")])
    assert call in out and finish(out).reason == "tool_use"


def test_guard_keeps_only_the_first_tool_call_when_parallel_calls_are_off() -> None:
    first, second = ToolCall("c1", "a", "{}"), ToolCall("c2", "b", "{}")
    guard = OutputGuard(single_call=True)
    out = guard.feed([first, second, Usage(1, 2), Finish("tool_use")])
    assert [e for e in out if isinstance(e, ToolCall)] == [first]
    assert guard.dropped_calls == 1


def test_guard_without_limits_is_inactive_and_passes_everything() -> None:
    guard = OutputGuard()
    events: list[StreamEvent] = [TextDelta("a"), ToolCall("c", "f", "{}"), *END]
    assert not guard.active
    assert guard.feed(events) == events


def test_guard_ignores_events_after_it_ended() -> None:
    guard = OutputGuard(stop=["!"])
    assert texts(guard.feed([TextDelta("hi!")])) == "hi"
    assert guard.feed([TextDelta("more"), *END]) == []
