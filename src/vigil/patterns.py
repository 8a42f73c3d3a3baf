"""`receive=` patterns matched off the event loop, with a time limit.

The text comes from a real server (anyone who controls one controls it) and
the pattern from ldirectord.cf: a pattern that backtracks catastrophically on
that text (`^(a|a)*$` on a few dozen characters) would hold the check engine
for minutes with Python's `re`. The `regex` module matches without the GIL
(`concurrent=True`) in a worker thread and gives up after the limit: the check
is then down, with the reason, and every other check ran meanwhile.
"""

from __future__ import annotations

import asyncio
import functools

import regex

#: the longest a single match may take (a real server's page, a sane pattern: microseconds)
MATCH_TIME_LIMIT = 0.5
#: at most this much of an answer is searched
MAX_MATCH_TEXT = 1024 * 1024


class PatternProblem(Exception):
    """The pattern cannot be used (invalid) or gave up on this text (too slow)."""


@functools.lru_cache(maxsize=256)
def compiled(pattern: str) -> regex.Pattern[str]:
    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise PatternProblem(f"receive pattern {pattern!r} is not a regular expression: "
                             f"{exc}") from None


def search_now(pattern: str, text: str, limit: float = MATCH_TIME_LIMIT) -> bool:
    """In the calling thread (without the GIL while matching): True if it matches."""
    try:
        return compiled(pattern).search(text[:MAX_MATCH_TEXT], timeout=limit,
                                        concurrent=True) is not None
    except TimeoutError:
        raise PatternProblem(f"receive pattern {pattern!r} gave up after {limit:g} s on "
                             f"{min(len(text), MAX_MATCH_TEXT)} characters (it backtracks: "
                             "simplify it)") from None


async def search(pattern: str, text: str, limit: float = MATCH_TIME_LIMIT) -> bool:
    """Off the event loop: True if `pattern` matches somewhere in `text`."""
    if len(text) <= 64 and len(pattern) <= 64 and _simple(pattern):
        return search_now(pattern, text, limit)  # not worth a thread hop
    return await asyncio.to_thread(search_now, pattern, text, limit)


def _simple(pattern: str) -> bool:
    """No group, repetition or alternation: matching cannot backtrack badly."""
    return not any(c in pattern for c in "()*+?{|")
