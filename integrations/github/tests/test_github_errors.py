"""GitHub.on_error against real PyGithub exceptions from the replay server.

Each case is a response GitHub documents ("Rate limits for the REST API", "Best practices for
using the REST API"): the replay server answers ``GET /users/octocat`` with it, PyGithub raises
what it raises for it, and the hook's decision is checked with a fixed ``now`` (no sleeping).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import github
import pytest
from github.GithubException import GithubException

from trigger_celery import OnErrorResult, RetryOptions, retry
from trigger_celery.integration import TaskInfo
from trigger_celery.testing import ReplayServer
from trigger_celery_github import GitHub
from trigger_celery_github.errors import decide, secondary_delay_s

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID ABCD:1234."
)
PRIMARY = "API rate limit exceeded for user ID 1."
DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"


def task_info(attempts: int = 1) -> TaskInfo:
    return TaskInfo(run_id="run_1", key="k", idempotency_key="0" * 64,
                    name="github.users.get_by_username", attempts=attempts)


@pytest.fixture
def server():
    with ReplayServer(clock=NOW.timestamp) as srv:
        yield srv


def raised(server: ReplayServer, status: int, headers: dict[str, str] | None = None,
           body: Any = None, reset_in: float | None = None, **gh_kwargs: Any
           ) -> tuple[GitHub, GithubException]:
    """Queue one response, call users.get_by_username through PyGithub, return the exception."""
    server.add("GET", "/users/octocat", status=status, headers=headers, body=body,
               reset_in=reset_in)
    gh = GitHub(credential="t", base_url=server.base_url, **gh_kwargs)
    client = gh.create_client("t")
    op = GitHub.operations()["users.get_by_username"]
    try:
        with pytest.raises(GithubException) as info:
            op.fn(client, op.params(username="octocat"), task_info())
    finally:
        client.close()
    assert len(server.requests) == 1
    return gh, info.value


def test_403_remaining_zero_waits_for_reset(server: ReplayServer) -> None:
    gh, exc = raised(server, 403, {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
                                   "x-ratelimit-used": "5000"},
                     {"message": PRIMARY, "documentation_url": DOCS}, reset_in=600)
    assert type(exc) is github.RateLimitExceededException
    result = gh.on_error(exc, task_info(), None, now=NOW)
    assert result == OnErrorResult(retry_at=NOW + timedelta(seconds=600))


def test_429_retry_after_wins(server: ReplayServer) -> None:
    gh, exc = raised(server, 429, {"Retry-After": "30", "x-ratelimit-remaining": "0"},
                     {"message": SECONDARY}, reset_in=3600)
    assert type(exc) is GithubException  # PyGithub has no special class for 429
    assert gh.on_error(exc, task_info(), None, now=NOW) == OnErrorResult(
        retry_at=NOW + timedelta(seconds=30)
    )


def test_429_plain_exception_with_reset_header(server: ReplayServer) -> None:
    gh, exc = raised(server, 429, {"x-ratelimit-remaining": "0"}, {"message": PRIMARY},
                     reset_in=90)
    assert type(exc) is GithubException
    assert gh.on_error(exc, task_info(), None, now=NOW) == OnErrorResult(
        retry_at=NOW + timedelta(seconds=90)
    )


def test_429_without_any_hint_backs_off_like_a_secondary_limit(server: ReplayServer) -> None:
    gh, exc = raised(server, 429, body={"message": "Too Many Requests"},
                     secondary_limit_floor_s=42)
    result = gh.on_error(exc, task_info(), None, now=NOW)
    assert result is not None and result.retry_at == NOW + timedelta(seconds=42)


@pytest.mark.parametrize("floor", [60.0, 5.0])
def test_secondary_limit_honours_floor_and_grows(server: ReplayServer, floor: float) -> None:
    gh, exc = raised(server, 403, body={"message": SECONDARY, "documentation_url": DOCS},
                     secondary_limit_floor_s=floor)
    assert type(exc) is github.RateLimitExceededException
    delays = []
    for attempts in (1, 2, 3):
        result = gh.on_error(exc, task_info(attempts), None, now=NOW)
        assert result is not None and not result.skip_retrying
        delays.append((result.retry_at - NOW).total_seconds())
    assert delays[0] == pytest.approx(floor)
    assert all(d >= floor for d in delays)
    assert delays[0] < delays[1] < delays[2]


def test_secondary_delay_is_capped_but_never_below_floor() -> None:
    assert secondary_delay_s(50, retry.standard_backoff, 60) == 15 * 60
    assert secondary_delay_s(50, retry.standard_backoff, 3600) == 3600


def test_primary_limit_without_reset_uses_preset_backoff(server: ReplayServer) -> None:
    gh, exc = raised(server, 403, {"x-ratelimit-remaining": "0"}, {"message": PRIMARY})
    first = gh.on_error(exc, task_info(1), None, now=NOW)
    assert first is not None
    assert 0.5 <= (first.retry_at - NOW).total_seconds() < 1.0  # standard_backoff: 500 ms x [1, 2)
    assert gh.on_error(exc, task_info(8), None, now=NOW) is None  # preset limit reached


def test_garbage_reset_header_from_the_server(server: ReplayServer) -> None:
    """PyGithub itself fails parsing a non-numeric x-ratelimit-reset (a ValueError, before any
    GithubException); the hook leaves that to the normal retry policy instead of crashing."""
    server.add("GET", "/users/octocat", status=403,
               headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "soon"},
               body={"message": PRIMARY})
    gh = GitHub(credential="t", base_url=server.base_url)
    client = gh.create_client("t")
    op = GitHub.operations()["users.get_by_username"]
    try:
        with pytest.raises(ValueError) as info:
            op.fn(client, op.params(username="octocat"), task_info())
    finally:
        client.close()
    assert gh.on_error(info.value, task_info(), None, now=NOW) is None


def test_garbage_retry_after_falls_back_to_backoff(server: ReplayServer) -> None:
    gh, exc = raised(server, 403, {"x-ratelimit-remaining": "0", "retry-after": "later"},
                     {"message": PRIMARY})
    result = gh.on_error(exc, task_info(), None, now=NOW)
    assert result is not None and 0.5 <= (result.retry_at - NOW).total_seconds() < 1.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_use_the_normal_policy(server: ReplayServer, status: int) -> None:
    gh, exc = raised(server, status, body={"message": "Server Error"})
    assert gh.on_error(exc, task_info(), None, now=NOW) is None


@pytest.mark.parametrize(
    ("status", "message", "exc_type"),
    [
        (401, "Bad credentials", github.BadCredentialsException),
        (404, "Not Found", github.UnknownObjectException),
        (422, "Validation Failed", GithubException),
        (403, "Resource not accessible by integration", GithubException),
        (410, "Issues are disabled for this repo", GithubException),
    ],
)
def test_client_errors_are_recorded_without_retry(
    server: ReplayServer, status: int, message: str, exc_type: type
) -> None:
    gh, exc = raised(server, status, {"x-ratelimit-remaining": "4999"},
                     {"message": message, "documentation_url": DOCS})
    assert type(exc) is exc_type
    assert gh.on_error(exc, task_info(), None, now=NOW) == OnErrorResult(skip_retrying=True)


# -- the pure function: header spelling and odd values -----------------------------------------

PRESET = RetryOptions(limit=8, factor=2, min_timeout_ms=1000, max_timeout_ms=30_000,
                      randomize=False)


def test_header_names_are_case_insensitive() -> None:
    reset = str(int(NOW.timestamp()) + 7)
    exc = GithubException(403, {"message": PRIMARY},
                          {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    assert decide(exc, attempts=1, retry=PRESET, now=NOW) == OnErrorResult(
        retry_at=NOW + timedelta(seconds=7)
    )
    exc = GithubException(429, None, {"Retry-After": "3"})
    assert decide(exc, attempts=1, retry=PRESET, now=NOW) == OnErrorResult(
        retry_at=NOW + timedelta(seconds=3)
    )


@pytest.mark.parametrize(
    "headers",
    [None, {}, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1e400"},
     {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "-5"},
     {"x-ratelimit-remaining": "nan", "x-ratelimit-reset": ""},
     {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "99999999999999999999"}],
)
def test_malformed_headers_never_crash(headers: dict[str, str] | None) -> None:
    exc = GithubException(403, {"message": PRIMARY}, headers)
    result = decide(exc, attempts=2, retry=PRESET, now=NOW)
    assert result is not None and result.retry_at is not None
    assert result.retry_at >= NOW


def test_reset_in_the_past_retries_now_not_earlier() -> None:
    exc = GithubException(403, {"message": PRIMARY},
                          {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000"})
    assert decide(exc, attempts=1, retry=PRESET, now=NOW) == OnErrorResult(retry_at=NOW)


def test_other_errors_use_the_normal_policy() -> None:
    assert decide(ConnectionError("reset by peer"), attempts=1, retry=PRESET, now=NOW) is None
    assert decide(GithubException(408, None, None), attempts=1, retry=PRESET, now=NOW) is None


def test_a_naive_now_is_taken_as_utc() -> None:
    exc = GithubException(429, None, {"retry-after": "3"})
    naive = NOW.astimezone(UTC).replace(tzinfo=None)
    result = decide(exc, attempts=1, retry=PRESET, now=naive)
    assert result == OnErrorResult(retry_at=NOW + timedelta(seconds=3))
    assert result.retry_at is not None and result.retry_at.tzinfo is not None
