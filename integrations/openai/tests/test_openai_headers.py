"""OpenAI's rate-limit headers read by ``errors.decide``, on SDK errors built in memory (no
server): which header wins, and that unusable values fall back to backoff instead of raising."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2 as httpx  # the HTTP library the openai SDK is built on
import openai
import pytest

from trigger_celery import OnErrorResult
from trigger_celery_openai.errors import decide

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def rate_limited(headers: dict[str, str], body: object = None) -> openai.RateLimitError:
    request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    response = httpx.Response(429, headers=headers, request=request)
    return openai.RateLimitError("rate limited", response=response, body=body)


def test_retry_after_ms_beats_every_other_header() -> None:
    err = rate_limited({"retry-after-ms": "1500", "retry-after": "30",
                        "x-ratelimit-remaining-requests": "0",
                        "x-ratelimit-reset-requests": "6m0s"})
    assert decide(err, NOW) == OnErrorResult(retry_at=NOW + timedelta(milliseconds=1500))


@pytest.mark.parametrize("bad_ms", ["-5", "soon", "inf", "nan", ""])
def test_unusable_retry_after_ms_falls_through_to_retry_after(bad_ms: str) -> None:
    err = rate_limited({"retry-after-ms": bad_ms, "retry-after": "30"})
    assert decide(err, NOW) == OnErrorResult(retry_at=NOW + timedelta(seconds=30))


def test_a_limit_with_requests_left_does_not_set_the_time() -> None:
    err = rate_limited({"x-ratelimit-remaining-requests": "2",
                        "x-ratelimit-reset-requests": "6m0s",
                        "x-ratelimit-remaining-tokens": "0",
                        "x-ratelimit-reset-tokens": "20s"})
    assert decide(err, NOW) == OnErrorResult(retry_at=NOW + timedelta(seconds=20))


@pytest.mark.parametrize("headers", [
    {},
    {"x-ratelimit-remaining-requests": "0"},  # no reset header
    {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "whenever"},
    {"x-ratelimit-remaining-requests": "none", "x-ratelimit-reset-requests": "1s"},
    {"retry-after": "-3"},
])
def test_no_usable_header_leaves_the_retry_policy_to_decide(headers: dict[str, str]) -> None:
    assert decide(rate_limited(headers), NOW) is None


def test_insufficient_quota_is_not_retried_whatever_the_headers() -> None:
    err = rate_limited({"retry-after": "1"},
                       body={"error": {"type": "insufficient_quota", "code": "insufficient_quota"}})
    assert decide(err, NOW) == OnErrorResult(skip_retrying=True)
