"""The load generator's pure parts and its generator driven by hand: settings, URL checks,
the slot schedule, late and error counting, the split verdict. No processes, no network."""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import loadgen

# --- settings -------------------------------------------------------------------

BASE_ENV = {"SERVER_ADDR": "http://hello:8080", "REQUESTS_PER_SECOND": "5"}


def options(**env: str) -> loadgen.Options:
    return loadgen.parse_options([], {**BASE_ENV, **env})


def usage_error(**env: str) -> str:
    with pytest.raises(loadgen.UsageError) as caught:
        options(**env)
    return str(caught.value)


def test_flags_override_env():
    parsed = loadgen.parse_options(
        ["--rate", "7", "--timeout", "500ms", "--duration", "1m", "--jitter", "0.5"],
        {"SERVER_ADDR": "http://hello:8080", "REQUESTS_PER_SECOND": "3", "TIMEOUT": "9"},
    )
    assert parsed.rate == 7
    assert parsed.timeout == 0.5
    assert parsed.duration == 60
    assert parsed.jitter == 0.5
    assert parsed.concurrency == loadgen.default_concurrency(7)


def test_duration_zero_is_refused_and_forever_is_explicit():
    message = usage_error(DURATION="0")
    assert message.startswith("DURATION='0' must be greater than 0")
    assert "'forever'" in message
    assert "DURATION='0s'" in usage_error(DURATION="0s")
    assert options(DURATION="forever").duration is None
    assert options(DURATION="Forever").duration is None
    assert options().duration is None  # unset: until stopped, as the Deployment runs it
    assert options(DURATION=str(30 * 86400)).duration == 30 * 86400
    assert "DURATION" in usage_error(DURATION=str(30 * 86400 + 1))
    assert "DURATION" in usage_error(DURATION="inf")


@pytest.mark.parametrize(
    ("name", "value", "mentions"),
    [
        ("REQUESTS_PER_SECOND", "1e-10", "from 0.001 to 100000"),
        ("REQUESTS_PER_SECOND", "0.0009", "from 0.001"),
        ("REQUESTS_PER_SECOND", "100001", "to 100000"),
        ("REQUESTS_PER_SECOND", "1e400", "requests per second"),
        ("REQUESTS_PER_SECOND", "-5", "requests per second"),
        ("REPORT_INTERVAL", "1e10", "from 100ms to 86400s"),
        ("REPORT_INTERVAL", "99ms", "from 100ms"),
        ("TIMEOUT", "1e10", "from 1ms to 300s"),
        ("TIMEOUT", "301", "to 300s"),
        ("TIMEOUT", "0", "from 1ms"),
        ("CONCURRENCY", "10000", "from 1 to 1000"),
        ("CONCURRENCY", "1001", "from 1 to 1000"),
        ("CONCURRENCY", "0", "from 1 to 1000"),
        ("SPLIT_TOLERANCE", "101", "percentage points"),
        ("SPLIT_TOLERANCE", "-1", "percentage points"),
        ("EXPECT_SPLIT", "v1:90,v2:20", "adds up to 110"),
        ("EXPECT_SPLIT", "v1:90,v2:10.5", "adds up to 100.5"),
        ("EXPECT_SPLIT", "v1:90,v1:10", "names v1 twice"),
        ("EXPECT_SPLIT", "v1=90", "VERSION:PERCENT"),
        ("EXPECT_SPLIT", "v1:x,v2:100", "gives v1 'x'"),
        ("MAX_ERROR_RATE", "1.5", "fraction"),
    ],
)
def test_ranges_are_checked(name, value, mentions):
    message = usage_error(**{name: value})
    assert message.startswith(f"{name}={value!r} ")
    assert mentions in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REQUESTS_PER_SECOND", "0.001", 0.001),
        ("REQUESTS_PER_SECOND", "100000", 100000.0),
        ("REPORT_INTERVAL", "100ms", 0.1),
        ("REPORT_INTERVAL", "1440m", 86400.0),
        ("TIMEOUT", "1ms", 0.001),
        ("TIMEOUT", "5m", 300.0),
        ("CONCURRENCY", "1000", 1000),
        ("CONCURRENCY", "1", 1),
        ("SPLIT_TOLERANCE", "0", 0.0),
        ("SPLIT_TOLERANCE", "100pp", 100.0),
    ],
)
def test_range_edges_are_accepted(name, value, expected):
    parsed = options(**{name: value})
    field = {
        "REQUESTS_PER_SECOND": "rate",
        "REPORT_INTERVAL": "report_interval",
        "TIMEOUT": "timeout",
        "CONCURRENCY": "concurrency",
        "SPLIT_TOLERANCE": "split_tolerance",
    }[name]
    assert getattr(parsed, field) == pytest.approx(expected)


def test_split_settings():
    parsed = options(EXPECT_SPLIT="v1:90, v2:10", SPLIT_TOLERANCE="2.5")
    assert parsed.expect_split == (("v1", 90.0), ("v2", 10.0))
    assert parsed.split_tolerance == 2.5
    assert options().expect_split is None
    assert options().split_tolerance == loadgen.DEFAULT_SPLIT_TOLERANCE == 5.0
    flagged = loadgen.parse_options(["--expect-split", "v2:100"], BASE_ENV)
    assert flagged.expect_split == (("v2", 100.0),)


# --- URLs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "mentions"),
    [
        ("http://*.x", "host label '*'"),
        ("http://.x", "empty label"),
        ("http://x..y", "empty label"),
        ("http://a b", "space or control character at position 8"),
        ("http://a\tb", "control character"),
        ("http://a/\x7f", "control character"),
        ("http://" + "a" * 64 + ".x", "label of 64 characters (at most 63)"),
        ("http://" + ".".join(["a" * 63] * 4) + ".x", "longer than 253"),
        ("http://a_b", "host label 'a_b'"),
        ("http://-a.x", "host label '-a'"),
        ("http://a-.x", "host label 'a-'"),
        ("ftp://x", "http:// or https://"),
        ("localhost:8080", "http:// or https://"),
        ("http:x", "http:// or https://"),
        ("http://x:0", "invalid port '0'"),
        ("http://x:65536", "invalid port '65536'"),
        ("http://x:8a", "invalid port '8a'"),
        ("http://x:+80", "invalid port '+80'"),
        ("http://x:123456", "invalid port"),
        ("http://", "has no host"),
        ("http://:80", "has no host"),
        ("http:///path", "has no host"),
        ("http://[::1", "not a valid URL"),
        ("http://[::g]/", "IPv6"),
        ("http://[1.2.3.4]/", "IPv4 address cannot be in brackets"),
        ("http://[::1]x/", "after the IPv6 address"),
        ("http://[fe80::1%25eth0]/", "IPv6 zone"),
        ("http://::1/", "without brackets"),
        ("http://127.1/", "neither a dotted-quad"),
        ("http://256.1.1.1/", "neither a dotted-quad"),
        ("http://1.2.3.4.5/", "neither a dotted-quad"),
        ("http://0x7f.1/", "neither a dotted-quad"),
        ("http://hello.0x1f/", "neither a dotted-quad"),
        ("http://u:p@x/", "user information"),
        ("http://a\u3000b/", "invalid internationalised host"),  # an ideographic space
        ("http://\u2603.x/", "invalid internationalised host"),
    ],
)
def test_bad_urls_are_refused(url, mentions):
    with pytest.raises(ValueError) as caught:
        loadgen.parse_urls(url)
    assert mentions in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://hello:8080",
        "http://hellosvc.hello.svc.cluster.local./",
        "https://Example.COM/path?q=1#frag",
        "HTTP://hello",
        "http://127.0.0.1:1/",
        "http://[::1]:65535/",
        "http://[2001:db8::1]/",
        "http://x:/",  # an empty port is the default port (RFC 3986)
        "http://a1-b2.c3/",
        "http://" + "a" * 63 + ".x/",
        "http://bücher.example/",
        "http://hello:8080/?status=503:10,500:5&delay=1ms:50",
    ],
)
def test_good_urls_are_kept_as_given(url):
    assert loadgen.parse_urls(url) == (url,)


def test_several_urls_split_only_before_a_scheme():
    assert loadgen.parse_urls("http://a:1/?status=503:10,500:5 , https://b/") == (
        "http://a:1/?status=503:10,500:5",
        "https://b/",
    )
    with pytest.raises(ValueError, match="empty label"):
        loadgen.parse_urls("http://a/,http://.b/")


def test_every_url_is_named_in_the_error():
    assert usage_error(SERVER_ADDR="http://ok/,http://*.x").startswith(
        "SERVER_ADDR='http://ok/,http://*.x' has host label '*'"
    )


# --- statistics -----------------------------------------------------------------


def test_late_threshold_boundary():
    assert loadgen.LATE_AFTER == 0.010
    assert not loadgen.is_late(0.0, 0.0)
    assert not loadgen.is_late(0.0, loadgen.LATE_AFTER)  # exactly at the threshold: on time
    assert loadgen.is_late(0.0, math.nextafter(loadgen.LATE_AFTER, 1.0))
    assert not loadgen.is_late(1.0, 0.5)  # early is never late


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (requests.exceptions.ConnectTimeout(), "timeouts"),  # also a ConnectionError
        (requests.exceptions.ReadTimeout(), "timeouts"),
        (requests.exceptions.Timeout(), "timeouts"),
        (requests.exceptions.ConnectionError(), "connection_errors"),
        (requests.exceptions.ProxyError(), "connection_errors"),
        (requests.exceptions.SSLError(), "connection_errors"),
        (requests.exceptions.ChunkedEncodingError(), "other_errors"),
        (requests.exceptions.TooManyRedirects(), "other_errors"),
        (requests.exceptions.InvalidHeader(), "other_errors"),
        (ValueError("anything else"), "other_errors"),
    ],
)
def test_errors_are_counted_by_kind(error, kind):
    assert loadgen.classify_error(error) == kind
    stats = loadgen.Stats(0.0)
    stats.record_error(kind)
    counts = {k: getattr(stats, k) for k in loadgen.ERROR_KINDS}
    assert counts == {k: int(k == kind) for k in loadgen.ERROR_KINDS}
    assert stats.errors == stats.finished == 1
    assert stats.completed == 0


def test_an_unknown_error_kind_is_a_bug_not_a_count():
    with pytest.raises(ValueError, match="unknown error kind 'sent'"):
        loadgen.Stats(0.0).record_error("sent")


def test_late_sends_add_up_whatever_their_order():
    stats = loadgen.Stats(0.0)
    for late in (True, False, True, True, False):
        stats.record_send(late=late)
    assert (stats.sent, stats.late) == (5, 3)


def test_stats_count_errors_and_rates():
    stats = loadgen.Stats(0.0)
    for _ in range(10):
        stats.record_send(late=False)
    stats.record_send(late=True)
    for status in (200, 200, 204, 301, 399, 400, 503):
        stats.record_response(status, "v1", 0.001, 0.001)
    for kind in ("timeouts", "timeouts", "connection_errors", "other_errors"):
        stats.record_error(kind)
    assert (stats.sent, stats.late) == (11, 1)
    assert stats.completed == 7
    assert stats.errors == 2 + 4  # 400 and 503 (a 399 is not an error), and the four
    assert stats.finished == 11
    assert stats.error_rate() == 6 / 11
    figures = stats.to_dict(elapsed=2.0)
    assert figures["actual_rate"] == 5.5
    assert figures["statuses"] == {"200": 2, "204": 1, "301": 1, "399": 1, "400": 1, "503": 1}
    assert (figures["timeouts"], figures["connection_errors"], figures["other_errors"]) == (2, 1, 1)
    assert figures["versions"] == {"v1": 7}
    assert loadgen.Stats(0.0).error_rate() is None


def test_versions_are_bounded():
    assert loadgen.version_key(None) == loadgen.NO_VERSION
    assert loadgen.version_key("  ") == loadgen.NO_VERSION
    assert loadgen.version_key(" v2 ") == "v2"
    assert loadgen.version_key("x" * 100) == "x" * loadgen.MAX_VERSION_LENGTH
    assert loadgen.version_key("v1\x1b[2J\u00e9") == "v1?[2J?"
    stats = loadgen.Stats(0.0)
    for index in range(loadgen.MAX_VERSIONS + 5):
        stats.record_response(200, f"v{index}", 0.001, 0.001)
    stats.record_response(200, "v0", 0.001, 0.001)  # a known version still counts as itself
    assert len(stats.versions) == loadgen.MAX_VERSIONS + 1
    assert stats.versions[loadgen.OTHER_VERSIONS] == 5
    assert stats.versions["v0"] == 2


def test_max_error_rate_verdict():
    assert loadgen.error_rate_failure(None, None) is None
    assert loadgen.error_rate_failure(0.9, None) is None
    # Nothing finished: the gate fails rather than passing on no evidence.
    assert "no finished requests" in loadgen.error_rate_failure(None, 1.0)
    assert "no finished requests" in loadgen.error_rate_failure(None, 0.0)
    assert loadgen.error_rate_failure(0.05, 0.05) is None  # at the limit: passes
    assert "exceeds" in loadgen.error_rate_failure(math.nextafter(0.05, 1), 0.05)
    assert loadgen.error_rate_failure(0.0, 0.0) is None
    assert loadgen.error_rate_failure(1.0, 1.0) is None


def test_latency_histogram_percentiles_within_one_percent():
    histogram = loadgen.LatencyHistogram()
    samples = [i / 10_000 for i in range(1, 10_001)]  # 0.1 ms .. 1 s, uniform
    for sample in reversed(samples):
        histogram.record(sample)
    for percent in (50, 90, 99, 99.9):
        exact = samples[int(len(samples) * percent / 100) - 1]
        assert histogram.percentile(percent) == pytest.approx(exact, rel=0.01)
    assert histogram.max == 1.0
    assert loadgen.LatencyHistogram().percentile(50) is None


# --- the split verdict ------------------------------------------------------------


def test_split_within_and_past_the_tolerance():
    expected = (("v1", 90.0), ("v2", 10.0))
    # 1,000 responses: the sampling allowance (3 standard errors, 2.85 pp) is below 5 pp.
    within = loadgen.judge_split({"v1": 855, "v2": 145}, expected, 5.0)
    assert within["ok"]
    assert within["deviation_pp"] == {"v1": -4.5, "v2": 4.5}
    assert within["allowed_pp"] == {"v1": 5.0, "v2": 5.0}
    at_edge = loadgen.judge_split({"v1": 850, "v2": 150}, expected, 5.0)
    assert at_edge["ok"]  # exactly at the tolerance passes
    past = loadgen.judge_split({"v1": 849, "v2": 151}, expected, 5.0)
    assert not past["ok"]
    assert past["worst"] in ("v1", "v2")
    assert past["observed"] == {"v1": 84.9, "v2": 15.1}
    assert "strays from --expect-split v1:90,v2:10" in loadgen.split_failure(past)
    assert loadgen.split_failure(within) is None


def test_split_allows_sampling_noise_in_small_samples():
    expected = (("v1", 90.0), ("v2", 10.0))
    small = loadgen.judge_split({"v1": 16, "v2": 4}, expected, 5.0)  # 80/20 of 20
    noise = 100 * 3 * math.sqrt(0.9 * 0.1 / 20)
    assert small["allowed_pp"]["v2"] == pytest.approx(noise, abs=0.01)
    assert small["ok"]
    wrong = loadgen.judge_split({"v1": 10, "v2": 10}, expected, 5.0)  # 50/50 of 20: 40 pp off
    assert not wrong["ok"]
    # A version expected at 0% or 100% has no sampling noise: the tolerance alone applies.
    pinned = loadgen.judge_split({"v1": 94, "v2": 6}, (("v1", 100.0), ("v2", 0.0)), 5.0)
    assert pinned["allowed_pp"] == {"v1": 5.0, "v2": 5.0}
    assert not pinned["ok"]


def test_split_counts_unexpected_and_missing_versions():
    verdict = loadgen.judge_split({"v1": 90, loadgen.NO_VERSION: 10}, (("v1", 90), ("v2", 10)), 5)
    assert verdict["observed"] == {"v1": 90.0, "v2": 0.0, loadgen.NO_VERSION: 10.0}
    assert verdict["deviation_pp"][loadgen.NO_VERSION] == 10.0
    assert not verdict["ok"]


def test_split_with_no_responses_fails():
    verdict = loadgen.judge_split({}, (("v1", 50), ("v2", 50)), 5)
    assert verdict["responses"] == 0
    assert not verdict["ok"]
    assert loadgen.split_failure(verdict) == "no responses to judge --expect-split by"
    # Even a tolerance that would forgive any deviation does not pass an unmeasured split.
    assert not loadgen.judge_split({}, (("v1", 50), ("v2", 50)), 100)["ok"]
    assert loadgen.split_failure(None) is None


# --- the slot schedule ------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("duration", "rate", "slots"),
    [
        *[(3, 40, 120), (0.1, 30, 3), (1, 2.5, 3), (2, 2.5, 5), (1, 0.001, 1), (0.5, 3, 2)],
        *[(1, 1, 1), (1e-6, 0.001, 1), (1e-3, 1e-3, 1)],  # a product far below 1: slot 0 counts
    ],
)
def test_slot_count_is_the_slots_due_before_the_end(duration, rate, slots):
    assert loadgen.slot_count(duration, rate) == slots


def test_slots_due_counts_slots_whose_interval_began():
    assert loadgen.slots_due(-0.001, 4, None) == 0
    assert loadgen.slots_due(0.0, 4, None) == 1  # slot 0 is due at the start
    assert loadgen.slots_due(0.2499, 4, None) == 1
    assert loadgen.slots_due(0.25, 4, None) == 2
    assert loadgen.slots_due(100.0, 4, None) == 401
    assert loadgen.slots_due(100.0, 4, 10) == 10


def generator_for(clock: FakeClock, **fields) -> loadgen.LoadGenerator:
    settings: dict[str, Any] = {"server_addrs": ("http://x",), "rate": 3.0, "duration": 100.0}
    settings["concurrency"] = 1
    settings.update(fields)
    generator = loadgen.LoadGenerator(loadgen.Options(**settings), clock=clock)
    generator.begin(clock.now)
    generator._spawn = lambda client=None: None  # type: ignore[method-assign,unused-ignore]  # by hand
    return generator


def test_schedule_is_start_plus_i_over_rate_without_drift():
    clock = FakeClock()
    generator = generator_for(clock)
    claimed = []
    while (slot := generator.claim()) is not None:
        claimed.append(slot)
    assert [index for index, _ in claimed] == list(range(300))
    assert claimed[-1][1] - clock.now == pytest.approx(299 / 3, abs=1e-9)  # no accumulated error
    assert claimed[1][1] - clock.now == pytest.approx(1 / 3, abs=1e-12)
    assert generator.scheduled(clock.now + 50) == 151
    assert generator.scheduled(clock.now + 500) == 300


def test_the_slot_at_the_end_is_not_part_of_the_run():
    clock = FakeClock()
    generator = generator_for(clock, rate=1.0, duration=3.0)
    dues = [due - clock.now for _, due in iter(generator.claim, None)]
    assert dues == [0.0, 1.0, 2.0]


def test_a_forever_run_never_runs_out_of_slots():
    clock = FakeClock()
    generator = generator_for(clock, duration=None)
    for _ in range(1000):
        assert generator.claim() is not None
    assert generator.total_slots is None
    assert generator.scheduled(clock.now + 10_000) == 30_001
    assert generator.dropped(clock.now + 10_000) == 0  # nothing is dropped while it runs


def test_jitter_stays_inside_each_slot():
    clock = FakeClock()
    generator = generator_for(clock, rate=10.0, duration=10.0, jitter=1.0)
    generator._rng.seed(7)
    offsets = []
    for slot in range(100):
        index, due = generator.claim()
        assert index == slot
        assert slot / 10 <= due - clock.now < (slot + 1) / 10
        offsets.append((due - clock.now) * 10 - slot)
    assert min(offsets) < 0.1 and max(offsets) > 0.9  # spread over the whole slot


def test_no_slot_is_claimed_after_a_stop():
    clock = FakeClock()
    generator = generator_for(clock)
    assert generator.claim() is not None
    generator.request_stop()
    assert generator.claim() is None


class FakeResponse:
    def __init__(self, status: int, version: str | None) -> None:
        self.status_code = status
        self.headers = {} if version is None else {"X-Version": version}


class FakeClient:
    """Answers from a script: a response, or an exception to raise; the clock advances."""

    def __init__(self, clock: FakeClock, script: list, took: float = 0.001) -> None:
        self.clock, self.script, self.took = clock, list(script), took

    def send(self, slot: int):
        self.clock.now += self.took
        outcome = self.script.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def close(self) -> None:
        pass


def send_at(generator, client, clock: FakeClock, when: float) -> tuple[bool, bool]:
    """Claim the next slot and send it at `when` seconds after its due time."""
    slot, due = generator.claim()
    clock.now = due + when
    return generator._send(client, slot, due)


def test_sends_are_counted_late_past_the_threshold_only():
    clock = FakeClock()
    generator = generator_for(clock, rate=1.0, duration=100.0)
    generator._reserve_worker()  # the one worker, sending by hand
    client = FakeClient(clock, [FakeResponse(200, "v1")] * 3)
    # (The exact boundary is is_late's, above; here the clock's sums round.)
    assert send_at(generator, client, clock, 0.0) == (True, False)
    assert send_at(generator, client, clock, loadgen.LATE_AFTER - 1e-6) == (True, False)
    assert send_at(generator, client, clock, loadgen.LATE_AFTER + 1e-6) == (True, False)
    assert (generator.total.sent, generator.total.late) == (3, 1)
    assert generator.interval.late == 1
    assert generator.total.versions == {"v1": 3}


def test_sent_requests_are_counted_by_outcome():
    clock = FakeClock()
    generator = generator_for(clock, rate=1.0, duration=100.0, timeout=1.0)
    generator._reserve_worker()
    script = [
        FakeResponse(200, "v1"),
        FakeResponse(503, None),
        requests.exceptions.ReadTimeout(),
        requests.exceptions.ConnectionError(),
        requests.exceptions.ConnectionError(),
        requests.exceptions.TooManyRedirects(),
        KeyError("a bug in a library"),  # a worker survives anything one request does
    ]
    client = FakeClient(clock, script)
    for _ in script:
        assert send_at(generator, client, clock, 0.0)[0]
    total = generator.total
    assert dict(total.statuses) == {200: 1, 503: 1}
    assert dict(total.versions) == {"v1": 1, loadgen.NO_VERSION: 1}
    assert (total.timeouts, total.connection_errors, total.other_errors) == (1, 2, 2)
    assert total.errors == 6
    assert generator.in_flight() == 0


def test_a_response_past_its_total_timeout_is_a_timeout():
    clock = FakeClock()
    generator = generator_for(clock, rate=1.0, duration=100.0, timeout=0.5)
    generator._reserve_worker()
    slow = FakeClient(clock, [FakeResponse(200, "v1")], took=0.5001)
    send_at(generator, slow, clock, 0.0)
    on_time = FakeClient(clock, [FakeResponse(200, "v1")], took=0.5)
    send_at(generator, on_time, clock, 0.0)
    assert generator.total.timeouts == 1
    assert dict(generator.total.statuses) == {200: 1}


def test_nothing_is_sent_at_or_after_the_end_and_the_rest_is_dropped():
    clock = FakeClock()
    generator = generator_for(clock, rate=10.0, duration=1.0)
    generator._reserve_worker()
    client = FakeClient(clock, [FakeResponse(200, "v1")] * 10, took=0.0)
    for _ in range(4):
        assert send_at(generator, client, clock, 0.0) == (True, False)
    slot, due = generator.claim()  # slot 4, due at 0.4 s, but the clock reaches the end
    clock.now = generator.end
    assert generator._send(client, slot, due) == (False, False)
    assert generator.total.sent == 4
    assert generator.dropped(clock.now) == 10 - 4
    assert generator.scheduled(clock.now + 60) == 10


def test_a_stop_drops_only_what_was_due():
    clock = FakeClock()
    generator = generator_for(clock, rate=10.0, duration=100.0)
    generator._reserve_worker()
    client = FakeClient(clock, [FakeResponse(200, "v1")] * 10, took=0.0)
    for _ in range(3):
        send_at(generator, client, clock, 0.0)  # slots 0-2, at 0.0, 0.1 and 0.2 s
    clock.now = generator.started + 0.55  # slots 3, 4 and 5 were due, and never sent
    generator.request_stop()
    clock.now += 10
    assert generator.scheduled(clock.now) == 6
    assert generator.dropped(clock.now) == 3
    assert generator.elapsed(clock.now) == pytest.approx(0.55)


def test_a_stop_before_the_start_schedules_nothing():
    clock = FakeClock()
    generator = loadgen.LoadGenerator(
        loadgen.Options(server_addrs=("http://x",), rate=10.0), clock=clock
    )
    generator.request_stop()
    generator.begin(clock.now)
    assert generator.claim() is None
    assert generator.scheduled(clock.now + 5) == 0
    assert generator.dropped(clock.now + 5) == 0


def test_figures_asked_for_before_the_start_are_zero():
    clock = FakeClock()
    generator = loadgen.LoadGenerator(
        loadgen.Options(server_addrs=("http://x",), rate=10.0), clock=clock
    )
    figures = generator.snapshot()  # what /stats answers in the moment before the start
    assert (figures["scheduled"], figures["elapsed_s"], figures["dropped"]) == (0, 0.0, 0)


class BlockingClient:
    """Holds every request until released, counting them."""

    def __init__(self, gate: threading.Event, counter: dict, changed: threading.Condition):
        self.gate, self.counter, self.changed = gate, counter, changed

    def send(self, slot: int):
        with self.changed:
            self.counter["in"] += 1
            self.changed.notify_all()
        self.gate.wait(30)
        return FakeResponse(200, "v1")

    def close(self) -> None:
        pass


@contextlib.contextmanager
def all_workers_busy(concurrency: int) -> Iterator[loadgen.LoadGenerator]:
    """A run whose `concurrency` workers each hold a request, until the block ends."""
    gate, counter, changed = threading.Event(), {"in": 0}, threading.Condition()
    generator = loadgen.LoadGenerator(
        loadgen.Options(
            server_addrs=("http://x",), rate=1000.0, duration=30.0, concurrency=concurrency
        ),
        client_factory=lambda: BlockingClient(gate, counter, changed),
    )
    generator.start()
    try:
        with changed:
            assert changed.wait_for(lambda: counter["in"] == concurrency, timeout=20)
        yield generator
    finally:
        generator.request_stop()
        gate.set()
        generator.finish()


def test_workers_start_only_when_all_are_busy_and_never_past_the_cap():
    with all_workers_busy(3) as generator:
        # Every worker is busy and the cap is reached: the schedule waits, no fourth starts.
        assert generator.workers_started == 3
        assert generator.in_flight() == 3
    assert generator.workers_started == 3
    assert generator.total.sent == 3


def test_a_fast_server_needs_few_workers_whatever_the_cap():
    clock = FakeClock()
    generator = generator_for(clock, rate=10.0, duration=10.0, concurrency=1000)
    generator._reserve_worker()
    client = FakeClient(clock, [FakeResponse(200, "v1")] * 100)
    for _ in range(100):
        send_at(generator, client, clock, 0.0)
    # One worker sending, and one started to wait for the next slot (never run here).
    assert generator.workers_started == 2


def test_a_stop_before_the_start_makes_no_client_and_no_worker():
    made: list = []
    generator = loadgen.LoadGenerator(
        loadgen.Options(server_addrs=("http://x",), rate=10.0),
        client_factory=lambda: made.append(1),
    )
    generator.request_stop()
    generator.start()
    assert made == [] and generator.workers_started == 0
    generator.finish()


def test_workers_and_the_watchdog_are_named_daemon_threads():
    # Daemons: a request still in flight when the run ends must not keep the process up.
    with all_workers_busy(2):
        ours = {
            t.name: t.daemon
            for t in threading.enumerate()
            if t.name == "watchdog" or t.name.startswith("worker-")
        }
        assert ours == {"watchdog": True, "worker-1": True, "worker-2": True}
        [watchdog] = [t for t in threading.enumerate() if t.name == "watchdog"]
    watchdog.join(10)
    assert not watchdog.is_alive()  # finish() ends it


def test_an_interval_is_counted_from_the_start_then_from_the_last_take():
    clock = FakeClock()
    generator = generator_for(clock)
    clock.now += 2.5
    stats, seconds = generator.take_interval()
    assert stats.started == generator.started and seconds == pytest.approx(2.5)
    clock.now += 1.0
    _, seconds = generator.take_interval()
    assert seconds == pytest.approx(1.0)
    assert generator.total.started == generator.started


def test_waiting_for_a_slot_waits_until_it_is_due_or_the_run_stops():
    generator = loadgen.LoadGenerator(loadgen.Options(server_addrs=("http://x",), rate=1.0))
    due = time.monotonic() + 0.2
    assert generator._wait_until(due) is True
    assert time.monotonic() >= due  # not a moment early
    generator.request_stop()
    assert generator._wait_until(time.monotonic() + 600) is False  # at once, not in 10 min


def test_elapsed_runs_with_the_clock_until_the_end_of_sending():
    clock = FakeClock()
    generator = generator_for(clock, duration=None)
    clock.now += 2.0
    assert generator.elapsed(clock.now) == pytest.approx(2.0)
    generator.request_stop()
    clock.now += 5.0
    assert generator.elapsed(clock.now) == pytest.approx(2.0)
