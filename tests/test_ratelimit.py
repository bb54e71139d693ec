from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from types import SimpleNamespace

import pytest

from errlink._delivery import ratelimit
from errlink._delivery.kinds import kind_of
from errlink._delivery.ratelimit import DEFAULT_RETRY_AFTER, RateLimits
from tests._support import FakeClock


@pytest.mark.parametrize(
    ("item_type", "category"),
    [
        ("event", "error"),
        ("transaction", "transaction"),
        ("client_report", "internal"),
        ("attachment", "attachment"),
        ("session", "session"),
    ],
)
def test_category_for_item(item_type: str, category: str) -> None:
    assert kind_of(item_type).category == category


def test_nothing_is_limited_at_first() -> None:
    limits = RateLimits()
    assert not limits.is_limited("error", now=0.0)
    assert limits.retry_after("error", now=0.0) == 0.0


def test_quota_header_limits_only_the_listed_categories() -> None:
    limits = RateLimits()
    limits.update(429, {"X-Sentry-Rate-Limits": "60:error;transaction:key"}, now=100.0)
    assert limits.is_limited("error", now=100.0)
    assert limits.is_limited("transaction", now=159.0)
    assert not limits.is_limited("internal", now=100.0)
    assert limits.retry_after("error", now=130.0) == pytest.approx(30.0)
    assert not limits.is_limited("error", now=160.0)


def test_quota_with_empty_categories_limits_everything() -> None:
    limits = RateLimits()
    limits.update(429, {"X-Sentry-Rate-Limits": "10::organization"}, now=0.0)
    for category in ("error", "transaction", "internal", "anything"):
        assert limits.is_limited(category, now=5.0)
    assert not limits.is_limited("error", now=10.0)


def test_several_quotas_reason_and_namespaces_and_odd_spacing() -> None:
    limits = RateLimits()
    header = " 30:transaction:key:usage_exceeded , 5:error;default:project:quota:ns1;ns2, 2::org"
    limits.update(200, {"x-sentry-rate-limits": header}, now=0.0)
    assert limits.retry_after("transaction", now=0.0) == pytest.approx(30.0)
    assert limits.retry_after("error", now=0.0) == pytest.approx(5.0)
    assert limits.retry_after("default", now=1.0) == pytest.approx(4.0)
    assert limits.retry_after("internal", now=1.0) == pytest.approx(1.0)  # from the "all" quota


def test_quota_header_is_honoured_on_success_responses_too() -> None:
    limits = RateLimits()
    limits.update(200, {"X-Sentry-Rate-Limits": "3:error:key"}, now=0.0)
    assert limits.is_limited("error", now=1.0)


def test_a_later_shorter_limit_does_not_shorten_a_longer_one() -> None:
    limits = RateLimits()
    limits.update(429, {"X-Sentry-Rate-Limits": "60:error:key"}, now=0.0)
    limits.update(429, {"X-Sentry-Rate-Limits": "1:error:key"}, now=0.0)
    assert limits.is_limited("error", now=30.0)


def test_retry_after_seconds_on_429_limits_all_categories() -> None:
    limits = RateLimits()
    limits.update(429, {"Retry-After": "7"}, now=0.0)
    assert limits.retry_after("error", now=0.0) == pytest.approx(7.0)
    assert limits.is_limited("internal", now=6.9)
    assert not limits.is_limited("internal", now=7.0)


def test_retry_after_http_date() -> None:
    limits = RateLimits()
    moment = datetime.now(timezone.utc) + timedelta(seconds=30)
    limits.update(429, {"Retry-After": format_datetime(moment, usegmt=True)}, now=0.0)
    assert 27.0 < limits.retry_after("error", now=0.0) <= 30.0


@pytest.mark.parametrize(
    "layout",
    ["%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y"],
    ids=["IMF-fixdate", "RFC 850", "asctime"],
)
def test_retry_after_in_each_http_date_form(layout: str) -> None:
    limits = RateLimits()
    moment = datetime.now(timezone.utc) + timedelta(seconds=30)
    limits.update(429, {"Retry-After": moment.strftime(layout)}, now=0.0)
    assert 27.0 < limits.retry_after("error", now=0.0) <= 30.0


def test_retry_after_date_in_the_past_means_no_wait() -> None:
    limits = RateLimits()
    limits.update(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=0.0)
    assert not limits.is_limited("error", now=0.0)


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "soon"}, {"Retry-After": "-5"}])
def test_429_without_a_usable_header_waits_the_default(headers: dict[str, str]) -> None:
    limits = RateLimits()
    limits.update(429, headers, now=0.0)
    assert limits.retry_after("error", now=0.0) == DEFAULT_RETRY_AFTER


def test_quota_header_takes_precedence_over_retry_after() -> None:
    limits = RateLimits()
    limits.update(429, {"X-Sentry-Rate-Limits": "5:error:key", "Retry-After": "100"}, now=0.0)
    assert limits.retry_after("error", now=0.0) == pytest.approx(5.0)
    assert not limits.is_limited("transaction", now=0.0)


@pytest.mark.parametrize(
    "header",
    ["garbage", "abc:error:key", "nan:error:key", "inf:error:key", "-3:error:key", ",,,", ":"],
)
def test_garbage_quotas_are_ignored_and_a_429_falls_back_to_the_default(header: str) -> None:
    limits = RateLimits()
    limits.update(200, {"X-Sentry-Rate-Limits": header}, now=0.0)
    assert not limits.is_limited("error", now=0.0)
    limits.update(429, {"X-Sentry-Rate-Limits": header}, now=0.0)
    assert limits.retry_after("error", now=0.0) == DEFAULT_RETRY_AFTER


def test_garbage_next_to_a_good_quota_keeps_the_good_one() -> None:
    limits = RateLimits()
    limits.update(429, {"X-Sentry-Rate-Limits": "x:y:z, 9:error:key"}, now=0.0)
    assert limits.retry_after("error", now=0.0) == pytest.approx(9.0)
    assert not limits.is_limited("transaction", now=0.0)


def test_other_statuses_without_headers_change_nothing() -> None:
    limits = RateLimits()
    for status in (200, 400, 413, 500, 503):
        limits.update(status, {"Retry-After": "30"}, now=0.0)
    assert not limits.is_limited("error", now=0.0)


def test_defaults_to_the_monotonic_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(time.monotonic())
    # Only this module's view of `time` is faked, and only its monotonic clock.
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=clock, time=time.time))
    limits = RateLimits()
    limits.update(429, {"Retry-After": "0.05"})
    assert limits.is_limited("error")
    clock.advance(0.04)
    assert limits.retry_after("error") == pytest.approx(0.01)
    clock.advance(0.02)
    assert not limits.is_limited("error")
