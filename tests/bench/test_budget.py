"""The benchmark stays within its 5-minute budget on a slow machine: the interleaved rounds of the
1,000-task runs shrink to what the budget leaves after the peer's reserve."""

from __future__ import annotations

import time

from bench.__main__ import BUDGET_S, LONG_N, LONG_ROUNDS, _rounds_that_fit

DISPATCH = [{"n": 300, "time_s": 3.0}, {"n": LONG_N, "time_s": 10.0}]
CONT = [{"n": 300, "time_s": 2.0}, {"n": LONG_N, "time_s": 8.0}]  # a round: 10 + 8 + 2 s


def started_ago(seconds: float) -> float:
    return time.monotonic() - seconds


def test_all_rounds_when_the_budget_allows() -> None:
    assert _rounds_that_fit(DISPATCH, CONT, started_ago(0), reserve_s=100) == LONG_ROUNDS


def test_fewer_rounds_as_the_budget_runs_out() -> None:
    assert _rounds_that_fit(DISPATCH, CONT, started_ago(BUDGET_S - 100 - 45), 100) == 2
    assert _rounds_that_fit(DISPATCH, CONT, started_ago(BUDGET_S - 100 - 25), 100) == 1
    assert _rounds_that_fit(DISPATCH, CONT, started_ago(BUDGET_S - 100 - 15), 100) == 0
    assert _rounds_that_fit(DISPATCH, CONT, started_ago(BUDGET_S), 0) == 0


def test_no_rounds_without_both_runs_of_1000() -> None:
    assert _rounds_that_fit(DISPATCH[:1], CONT, started_ago(0), 0) == 0
    assert _rounds_that_fit(DISPATCH, CONT[:1], started_ago(0), 0) == 0
