#!/usr/bin/env python3
"""loadgen: the mesh tutorial's load generator, open-loop and honest about latency.

Request i is due at start + i/rate whatever the server does, so a slow server cannot
slow the load down (no drift), and latency is measured from that due time as well as
from the actual send, which corrects coordinated omission the way wrk2 does. Worker
threads, each with its own keep-alive `requests.Session`, are started only when every
existing one is busy, up to CONCURRENCY. A request sent more than LATE_AFTER behind its
due time is counted as late; a slot not sent by DURATION is counted as dropped, so the
run ends on time. Each request's total time is bounded by TIMEOUT (a watchdog closes the
socket of a server that trickles bytes), so the run ends by DURATION + TIMEOUT.

Configuration: SERVER_ADDR and REQUESTS_PER_SECOND (required), DURATION, CONCURRENCY,
TIMEOUT, REPORT_INTERVAL, JITTER, MAX_ERROR_RATE, EXPECT_SPLIT, SPLIT_TOLERANCE,
STATUS_PORT, each env var with a matching flag (`--help`). See docs/apps.md.
"""

# ruff: noqa: E402  (the first signal handlers come before the other imports)
from __future__ import annotations

import signal

# From the script's first line, SIGTERM and SIGINT are recorded rather than fatal (no
# KeyboardInterrupt traceback during the imports); StopSignals takes over in main().
EARLY_SIGNALS: list[int] = []
if __name__ == "__main__":
    for _signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(_signum, lambda signum, _frame: EARLY_SIGNALS.append(signum))

import argparse
import contextlib
import ipaddress
import json
import math
import os
import random
import re
import select
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

# requests (~0.1 s to import) and http.server are imported where they are used, so that
# the signal handlers are in place within a few milliseconds of the interpreter starting.
if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    import requests

# A send this far behind its due time counts as late: well above the scheduling noise of
# a sleeping thread, well below anything a user would call keeping the rate.
LATE_AFTER = 0.010
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Ranges of the settings (docs/apps.md). The bounds keep every wait representable
# (threading and select reject timeouts past ~292 years; socket timeouts far less) and
# every setting meaningful: a rate below one request in 1,000 s, or a progress report
# less often than daily, is a typo rather than a load test.
MIN_RATE, MAX_RATE = 0.001, 100_000.0
MAX_CONCURRENCY = 1000
MIN_TIMEOUT, MAX_TIMEOUT = 0.001, 300.0
MIN_REPORT_INTERVAL, MAX_REPORT_INTERVAL = 0.1, 86_400.0
MAX_DURATION = 30 * 86_400.0
FOREVER = "forever"  # the explicit spelling of "until stopped" (unset means the same)
DEFAULT_SPLIT_TOLERANCE = 5.0  # percentage points
# A version's share may also stray by this many standard errors of the sample, so that
# a short run is not failed by chance: 90/10 over 100 responses has a standard error of
# 3 points for each share, and 3 of them allow 9.
SPLIT_SIGMAS = 3.0
# Memory stays bounded whatever a server puts in X-Version.
MAX_VERSION_LENGTH = 64
MAX_VERSIONS = 32
NO_VERSION, OTHER_VERSIONS = "(none)", "(other)"
VERSION_HEADER = "X-Version"
# Longest single wait of any thread: waits longer than this are taken in steps.
MAX_WAIT = 3600.0
# After the last send, requests in flight get TIMEOUT plus this to finish.
FINISH_GRACE = 0.5


class UsageError(Exception):
    """A missing or invalid setting: one line on stderr, exit code 2."""


# ---------------------------------------------------------------------------
# Options: flags override env; every value is checked before any thread starts.


@dataclass(frozen=True)
class Options:
    server_addrs: tuple[str, ...]
    rate: float
    duration: float | None = None  # None: until stopped
    concurrency: int = 4
    timeout: float = 2.0
    report_interval: float = 5.0
    jitter: float = 0.0
    json_summary: bool = False
    max_error_rate: float | None = None
    expect_split: tuple[tuple[str, float], ...] | None = None
    split_tolerance: float = DEFAULT_SPLIT_TOLERANCE
    status_port: int | None = None
    status_address: str = ""

    @property
    def label(self) -> str:
        """The target as reports name it: one URL, or the list, comma-separated."""
        return ",".join(self.server_addrs)


def parse_duration(text: str) -> float:
    """`500ms`, `10s`, `2m`, `1h` or a bare number of seconds."""
    value = text.strip().lower()
    scale = 1.0
    for unit, unit_scale in (("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if value.endswith(unit):
            value, scale = value[: -len(unit)], unit_scale
            break
    try:
        number = float(value) * scale
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be a duration such as 10, 10s, 500ms or 2m")
    return number


def _seconds(value: float) -> str:
    return f"{value * 1000:g}ms" if value < 1 else f"{value:g}s"


def bounded_duration(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        seconds = parse_duration(text)
        if not low <= seconds <= high:
            raise ValueError(f"must be from {_seconds(low)} to {_seconds(high)}")
        return seconds

    return parse


def parse_run_duration(text: str) -> float | None:
    """DURATION: a positive duration up to MAX_DURATION, or `forever` (None).

    Zero is refused rather than read as "forever": a run that was meant to be short
    must not silently become endless."""
    if text.strip().lower() == FOREVER:
        return None
    seconds = parse_duration(text)
    if not 0 < seconds <= MAX_DURATION:
        raise ValueError(
            f"must be greater than 0 and at most {MAX_DURATION / 86_400:g} days;"
            f" to run until stopped, leave it unset or write {FOREVER!r}"
        )
    return seconds


def parse_rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and MIN_RATE <= rate <= MAX_RATE):
        raise ValueError(
            f"must be a number of requests per second from {MIN_RATE:g} to {MAX_RATE:g}"
        )
    return rate


def parse_concurrency(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_CONCURRENCY:
        raise ValueError(f"must be a whole number from 1 to {MAX_CONCURRENCY}")
    return number


def parse_fraction(text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ValueError("must be a fraction from 0 to 1 (or a percentage such as 5%)")
    return value


def parse_port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return number


def parse_tolerance(text: str) -> float:
    try:
        value = float(text.removesuffix("pp"))
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= 100):
        raise ValueError("must be a number of percentage points from 0 to 100, such as 5")
    return value


_VERSION_NAME = re.compile(r"[\x21-\x2b\x2d-\x39\x3b-\x7e]{1,64}")  # printable, no `,` `:`


def parse_split(text: str) -> tuple[tuple[str, float], ...]:
    """`v1:90,v2:10`: each version's percentage of the responses, summing to 100 as a
    VirtualService's weights do."""
    split: list[tuple[str, float]] = []
    for item in text.split(","):
        version, sep, weight_text = item.strip().partition(":")
        if not sep or not _VERSION_NAME.fullmatch(version):
            raise ValueError("must be VERSION:PERCENT pairs, such as v1:90,v2:10")
        try:
            weight = float(weight_text)
        except ValueError:
            weight = math.nan
        if not (math.isfinite(weight) and 0 <= weight <= 100):
            raise ValueError(f"gives {version} {weight_text!r}: a percentage from 0 to 100")
        if any(version == seen for seen, _ in split):
            raise ValueError(f"names {version} twice")
        split.append((version, weight))
    total = sum(weight for _, weight in split)
    if abs(total - 100) > 1e-6:
        raise ValueError(f"adds up to {total:g}, not 100")
    return tuple(split)


# URLs are checked as the client will use them: a bad host is refused before any thread
# starts, not discovered by every worker with a traceback.
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", re.ASCII | re.IGNORECASE)
# A last label like this makes a host an IPv4 address to URL parsers and to
# getaddrinfo (`http://10.1`, `http://0x7f.1`): such hosts must be dotted quads.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.ASCII | re.IGNORECASE)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_SCHEME_AHEAD = re.compile(r"\s*,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")
MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63


def check_host(host: str) -> None:
    """Raise ValueError unless `host` (from a URL's authority) is an IPv6 literal in
    brackets, a dotted-quad IPv4 address, or a DNS name: labels of letters, digits and
    inner hyphens, each 1-63 characters, 253 at most in all (RFC 1123; non-ASCII names
    are checked after IDNA 2008 / UTS 46 encoding, as requests sends them)."""
    if not host:
        raise ValueError("has no host")
    if host.startswith("["):
        literal = host[1:-1] if host.endswith("]") else ""
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise ValueError(f"has an invalid IPv6 address {host!r}") from None
        if "%" in literal:
            raise ValueError(f"has an IPv6 zone in {host!r}, which loadgen does not support")
        return
    name = host.removesuffix(".")  # one trailing dot: an absolute DNS name
    if not name.isascii():
        import idna  # requests' own dependency, and its encoder for such hosts

        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as err:
            raise ValueError(f"has an invalid internationalised host {host!r}: {err}") from None
    labels = name.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise ValueError(
                f"has host {host!r}, which is neither a dotted-quad IPv4 address nor a name"
            ) from None
        return
    if len(name) > MAX_HOST_LENGTH:
        raise ValueError(f"has a host longer than {MAX_HOST_LENGTH} characters")
    for label in labels:
        if not label:
            raise ValueError(f"has an empty label in host {host!r}")
        if len(label) > MAX_LABEL_LENGTH:
            raise ValueError(
                f"has a host label of {len(label)} characters (at most {MAX_LABEL_LENGTH})"
            )
        if not _LDH_LABEL.fullmatch(label):
            raise ValueError(
                f"has host label {label!r}: only letters, digits and inner hyphens are allowed"
            )


def parse_url(text: str) -> str:
    """An http:// or https:// URL with a valid host and port, else ValueError."""
    bad = _CONTROL_OR_SPACE.search(text)
    if bad:
        raise ValueError(f"has a space or control character at position {bad.start()}")
    # Brackets are checked before urlsplit: how it treats text after `]` differs between
    # Python patch releases (3.11.4 began refusing it), and the message should not.
    authority = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)", text)
    if authority and authority.group(1).startswith("["):
        close = authority.group(1).find("]")
        rest = authority.group(1)[close + 1 :] if close >= 0 else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"has {rest!r} after the IPv6 address")
    try:
        parts = urlsplit(text)
    except ValueError as err:  # e.g. an unclosed `[`
        raise ValueError(f"is not a valid URL: {err}") from None
    if parts.scheme.lower() not in ("http", "https") or not text.lower().startswith(
        f"{parts.scheme.lower()}://"
    ):
        raise ValueError("must be an http:// or https:// URL, such as http://hello:8080")
    netloc = parts.netloc
    if "@" in netloc:  # the URL is printed in every report; credentials do not belong there
        raise ValueError("must not carry user information (user:password@)")
    if netloc.startswith("["):
        close = netloc.find("]")
        host, rest = (netloc, "") if close < 0 else (netloc[: close + 1], netloc[close + 1 :])
        if rest and not rest.startswith(":"):
            raise ValueError(f"has {rest!r} after the IPv6 address")
        port = rest[1:]
    else:
        if netloc.count(":") > 1:
            raise ValueError("has an IPv6 address without brackets, such as http://[::1]:8080")
        host, _, port = netloc.partition(":")
    check_host(host)
    if port and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        raise ValueError(f"has an invalid port {port!r} (1 to 65535)")
    return text


def parse_urls(text: str) -> tuple[str, ...]:
    """SERVER_ADDR: one URL, or several separated by commas (a comma splits only before
    a `scheme://`, so commas inside a URL's query stay where they are)."""
    return tuple(parse_url(url) for url in _SCHEME_AHEAD.split(text.strip()))


def default_concurrency(rate: float) -> int:
    """Room for a tenth of a second of requests in flight, at least 4, at most 64."""
    return max(4, min(64, math.ceil(rate / 10)))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override,unused-ignore]  # one line, not usage + message
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="loadgen",
        description="Open-loop constant-rate HTTP load generator. Each flag overrides its env var.",
    )
    add = parser.add_argument
    add(
        "--server-addr",
        metavar="URL[,URL...]",
        help="target URL, or several taken in turn (env SERVER_ADDR, required)",
    )
    add(
        "--rate",
        metavar="RPS",
        help=f"requests per second, {MIN_RATE:g}-{MAX_RATE:g} (env REQUESTS_PER_SECOND, required)",
    )
    add(
        "--duration",
        help="stop after this long, e.g. 60s (env DURATION; unset or 'forever': until stopped)",
    )
    add(
        "--concurrency",
        help=f"most requests in flight, 1-{MAX_CONCURRENCY} (env CONCURRENCY; default rate/10, 4-64)",
    )
    add("--timeout", help="total time one request may take (env TIMEOUT; default 2s)")
    add(
        "--report-interval",
        help="seconds between progress reports (env REPORT_INTERVAL; default 5)",
    )
    add("--jitter", help="random offset of each send, 0-1 of the interval (env JITTER; default 0)")
    add(
        "--max-error-rate",
        help="exit 1 if errors exceed this fraction, e.g. 0.01 (env MAX_ERROR_RATE)",
    )
    add(
        "--expect-split",
        metavar="V:PCT,...",
        help=f"exit 1 if the {VERSION_HEADER} split strays from this, e.g. v1:90,v2:10"
        " (env EXPECT_SPLIT)",
    )
    add(
        "--split-tolerance",
        metavar="PP",
        help=f"percentage points a share may stray (env SPLIT_TOLERANCE; default {DEFAULT_SPLIT_TOLERANCE:g})",
    )
    add(
        "--status-port",
        help="serve /healthz and /stats on this port (env STATUS_PORT; default off)",
    )
    add("--json", action="store_true", help="print the final summary as JSON on stdout")
    return parser


def parse_options(argv: Sequence[str] | None, env: Mapping[str, str]) -> Options:
    args = build_parser().parse_args(argv)

    def setting(
        flag_value: str | None,
        name: str,
        parse: Callable[[str], Any],
        default: Any = None,
        required: bool = False,
    ) -> Any:
        raw = flag_value if flag_value is not None else env.get(name, "")
        raw = raw.strip()
        if not raw:
            if required:
                raise UsageError(f"{name} is required")
            return default
        try:
            return parse(raw)
        except ValueError as err:
            raise UsageError(f"{name}={raw!r} {err}") from None

    server_addrs = setting(args.server_addr, "SERVER_ADDR", parse_urls, required=True)
    rate = setting(args.rate, "REQUESTS_PER_SECOND", parse_rate, required=True)
    return Options(
        server_addrs=server_addrs,
        rate=rate,
        duration=setting(args.duration, "DURATION", parse_run_duration),
        concurrency=setting(
            args.concurrency, "CONCURRENCY", parse_concurrency, default_concurrency(rate)
        ),
        timeout=setting(args.timeout, "TIMEOUT", bounded_duration(MIN_TIMEOUT, MAX_TIMEOUT), 2.0),
        report_interval=setting(
            args.report_interval,
            "REPORT_INTERVAL",
            bounded_duration(MIN_REPORT_INTERVAL, MAX_REPORT_INTERVAL),
            5.0,
        ),
        jitter=setting(args.jitter, "JITTER", parse_fraction, 0.0),
        json_summary=args.json,
        max_error_rate=setting(args.max_error_rate, "MAX_ERROR_RATE", parse_fraction),
        expect_split=setting(args.expect_split, "EXPECT_SPLIT", parse_split),
        split_tolerance=setting(
            args.split_tolerance, "SPLIT_TOLERANCE", parse_tolerance, DEFAULT_SPLIT_TOLERANCE
        ),
        status_port=setting(args.status_port, "STATUS_PORT", parse_port),
        status_address=env.get("STATUS_ADDRESS", "").strip(),
    )


# ---------------------------------------------------------------------------
# Statistics


class LatencyHistogram:
    """Log-scale buckets 1% wide: constant memory however long the run, each percentile
    within 1% of the exact one (max is exact)."""

    _LOG_GROWTH = math.log(1.01)

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.count = 0
        self.max = 0.0

    def record(self, seconds: float) -> None:
        micros = max(seconds * 1e6, 1.0)
        self.counts[int(math.log(micros) / self._LOG_GROWTH)] += 1
        self.count += 1
        self.max = max(self.max, seconds)

    def percentile(self, percent: float) -> float | None:
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * percent / 100))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                midpoint = math.exp((bucket + 0.5) * self._LOG_GROWTH) / 1e6
                return min(midpoint, self.max)
        return self.max

    def summary_ms(self) -> dict[str, float] | None:
        if not self.count:
            return None
        figures = {f"p{p:g}": round((self.percentile(p) or 0.0) * 1000, 3) for p in PERCENTILES}
        figures["max"] = round(self.max * 1000, 3)
        return figures


ERROR_KINDS = ("timeouts", "connection_errors", "other_errors")


def is_late(due: float, sent_at: float) -> bool:
    """A send is late when it left more than LATE_AFTER after its due time."""
    return sent_at - due > LATE_AFTER


def classify_error(error: BaseException) -> str:
    """The error kind a failed request is counted under. A connect timeout is a
    timeout (requests makes it a ConnectionError too)."""
    import requests

    if isinstance(error, requests.exceptions.Timeout):
        return "timeouts"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "connection_errors"
    return "other_errors"


_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def version_key(value: str | None) -> str:
    """The X-Version value a response is counted under: trimmed, bounded in length, and
    printable (a server's escape sequences must not reach the terminal or the log)."""
    if value is None or not value.strip():
        return NO_VERSION
    return _UNPRINTABLE.sub("?", value.strip()[:MAX_VERSION_LENGTH])


class Stats:
    """Counts for one report interval, or for the whole run."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.sent = 0
        self.late = 0
        self.statuses: Counter[int] = Counter()
        self.versions: Counter[str] = Counter()
        self.timeouts = 0
        self.connection_errors = 0
        self.other_errors = 0
        self.latency = LatencyHistogram()  # from the due time (coordinated omission corrected)
        self.service_latency = LatencyHistogram()  # from the actual send

    def record_send(self, late: bool) -> None:
        self.sent += 1
        self.late += late

    def record_response(
        self, status: int, version: str, latency: float, service_latency: float
    ) -> None:
        self.statuses[status] += 1
        if version not in self.versions and len(self.versions) >= MAX_VERSIONS:
            version = OTHER_VERSIONS
        self.versions[version] += 1
        self.latency.record(latency)
        self.service_latency.record(service_latency)

    def record_error(self, kind: str) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        setattr(self, kind, getattr(self, kind) + 1)

    @property
    def completed(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        failed_statuses = sum(n for code, n in self.statuses.items() if code >= 400)
        return failed_statuses + self.timeouts + self.connection_errors + self.other_errors

    @property
    def finished(self) -> int:
        return self.completed + self.timeouts + self.connection_errors + self.other_errors

    def error_rate(self) -> float | None:
        return self.errors / self.finished if self.finished else None

    def to_dict(self, elapsed: float) -> dict[str, Any]:
        return {
            "elapsed_s": round(elapsed, 3),
            "sent": self.sent,
            "completed": self.completed,
            "late": self.late,
            "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
            "versions": dict(sorted(self.versions.items())),
            "timeouts": self.timeouts,
            "connection_errors": self.connection_errors,
            "other_errors": self.other_errors,
            "errors": self.errors,
            "error_rate": self.error_rate(),
            "actual_rate": round(self.sent / elapsed, 3) if elapsed > 0 else 0.0,
            "latency_ms": self.latency.summary_ms(),
            "service_latency_ms": self.service_latency.summary_ms(),
        }


def judge_split(
    versions: Mapping[str, int], expected: Sequence[tuple[str, float]], tolerance: float
) -> dict[str, Any]:
    """The observed X-Version split against the expected one, in percentage points.

    Each version (expected or seen) may stray from its expected share by `tolerance`
    points, or by SPLIT_SIGMAS standard errors of a binomial sample of this size if
    that is more. No responses at all fail: a split that was not measured is not met."""
    responses = sum(versions.values())
    want = dict(expected)
    names = list(want) + sorted(name for name in versions if name not in want)
    observed: dict[str, float] = {}
    deviation: dict[str, float] = {}
    allowed: dict[str, float] = {}
    for name in names:
        share = want.get(name, 0.0) / 100
        seen = 100 * versions.get(name, 0) / responses if responses else 0.0
        observed[name] = round(seen, 2)
        deviation[name] = round(seen - 100 * share, 2)
        noise = 100 * SPLIT_SIGMAS * math.sqrt(share * (1 - share) / responses) if responses else 0
        allowed[name] = round(max(tolerance, noise), 2)
    worst = max(names, key=lambda name: abs(deviation[name]) - allowed[name])
    return {
        "expected": want,
        "observed": observed,
        "deviation_pp": deviation,
        "allowed_pp": allowed,
        "responses": responses,
        "worst": worst,
        "ok": responses > 0 and all(abs(deviation[n]) <= allowed[n] for n in names),
    }


def error_rate_failure(error_rate: float | None, max_error_rate: float | None) -> str | None:
    """Why the run fails its --max-error-rate, or None. No finished request fails it:
    a gate that measured nothing must not pass."""
    if max_error_rate is None:
        return None
    if error_rate is None:
        return f"no finished requests to judge --max-error-rate {max_error_rate:.2%} by"
    if error_rate > max_error_rate:
        return f"error rate {error_rate:.2%} exceeds --max-error-rate {max_error_rate:.2%}"
    return None


def split_failure(split: Mapping[str, Any] | None) -> str | None:
    if split is None or split["ok"]:
        return None
    if not split["responses"]:
        return "no responses to judge --expect-split by"
    worst = split["worst"]
    observed = ",".join(f"{name}:{share:g}%" for name, share in split["observed"].items())
    return (
        f"split {observed} strays from --expect-split {format_split(split['expected'])}:"
        f" {worst} by {split['deviation_pp'][worst]:+.1f} pp"
        f" (allowed {split['allowed_pp'][worst]:g} pp)"
    )


def format_split(expected: Mapping[str, float]) -> str:
    return ",".join(f"{name}:{weight:g}" for name, weight in expected.items())


def format_report(url: str, label: str, figures: Mapping[str, Any]) -> str:
    """The tutorial's progress line, then the statistics."""
    codes = ",".join(f"{code}:{n}" for code, n in figures["statuses"].items()) or "none"
    dropped = f" dropped={figures['dropped']}" if "dropped" in figures else ""
    lines = [
        f"{figures['completed']} request(s) complete to {url}",
        f"  {label} {figures['elapsed_s']:.2f}s: sent={figures['sent']}"
        f" completed={figures['completed']} late={figures['late']}{dropped}"
        f" rate={figures['actual_rate']:.2f}/s codes={codes} timeouts={figures['timeouts']}"
        f" connection_errors={figures['connection_errors']}"
        f" other_errors={figures['other_errors']}",
    ]
    for name, key in (("latency ms", "latency_ms"), ("from send ms", "service_latency_ms")):
        summary = figures[key]
        if summary is None:
            lines.append(f"  {name}: no responses")
        else:
            lines.append(f"  {name}: " + " ".join(f"{k}={v:.2f}" for k, v in summary.items()))
    versions = figures["versions"]
    if versions:
        total = sum(versions.values())
        lines.append(
            "  versions: "
            + " ".join(f"{name}={n} ({100 * n / total:.1f}%)" for name, n in versions.items())
        )
    split = figures.get("split")
    if split is not None:
        worst = split["worst"]
        verdict = "ok" if split["ok"] else "FAILED"
        lines.append(
            f"  split vs {format_split(split['expected'])}: "
            + " ".join(f"{name} {dev:+.1f}pp" for name, dev in split["deviation_pp"].items())
            + f"; worst {worst} {split['deviation_pp'][worst]:+.1f}pp,"
            f" allowed {split['allowed_pp'][worst]:g}pp: {verdict}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The open-loop schedule


def slot_count(duration: float, rate: float) -> int:
    """Slots in a run: slot i is due at i/rate, and only those due before the end count.
    (A product like 0.1 * 30 = 3.0000000000000004 is taken as the whole number it means.)
    Slot 0 is due at the start, before any end: a run has at least one slot."""
    exact = duration * rate
    nearest = round(exact)
    if math.isclose(exact, nearest, rel_tol=1e-9):  # never to 0: exact > 0
        return nearest
    return math.ceil(exact)


def slots_due(elapsed: float, rate: float, total: int | None) -> int:
    """Slots whose interval has begun `elapsed` seconds into the run."""
    if elapsed < 0:
        return 0
    due = math.floor(elapsed * rate) + 1
    return due if total is None else min(due, total)


# ---------------------------------------------------------------------------
# The client: requests, with each request's total time bounded by a watchdog

# Per worker thread: `on_socket`, called with the socket its current request reads from.
_current = threading.local()


@dataclass
class InFlight:
    """One request being sent: when it must be over, and the socket to cut if it is not."""

    deadline: float
    sock: socket.socket | None = None
    aborted: bool = False


def _cut(sock: socket.socket) -> None:
    """Wake a thread blocked on `sock` (its read fails at once). socket.socket's own
    shutdown, so that a TLS socket's state is left to the thread that owns it."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_tracked_pools: dict[str, type] | None = None


def tracked_pool_classes() -> dict[str, type]:
    """urllib3 connection pools whose connections report the socket a response is read
    from, so that the watchdog can cut a request that overstays its TIMEOUT (urllib3's
    own timeouts apply to each read, and a server that trickles bytes never trips them)."""
    global _tracked_pools
    if _tracked_pools is None:
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
        from urllib3.response import HTTPResponse

        def report_socket(sock: socket.socket | None) -> None:
            hook = getattr(_current, "on_socket", None)
            if hook is not None and sock is not None:
                hook(sock)

        class TrackedHTTPConnection(HTTPConnection):
            def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3 does
                report_socket(self.sock)
                return super().getresponse()

        class TrackedHTTPSConnection(HTTPSConnection):
            def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3 does
                report_socket(self.sock)
                return super().getresponse()

        class TrackedHTTPPool(HTTPConnectionPool):
            ConnectionCls = TrackedHTTPConnection

        class TrackedHTTPSPool(HTTPSConnectionPool):
            ConnectionCls = TrackedHTTPSConnection

        _tracked_pools = {"http": TrackedHTTPPool, "https": TrackedHTTPSPool}
    return _tracked_pools


_tracked_adapter: type | None = None


def tracked_adapter_class() -> type:
    """requests' HTTPAdapter with the tracked pools, also behind an HTTP(S) proxy."""
    global _tracked_adapter
    if _tracked_adapter is None:
        from requests.adapters import HTTPAdapter

        class TrackedAdapter(HTTPAdapter):
            def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                super().init_poolmanager(*args, **kwargs)
                self.poolmanager.pool_classes_by_scheme = tracked_pool_classes()

            def proxy_manager_for(self, proxy: Any, **kwargs: Any) -> Any:
                manager = super().proxy_manager_for(proxy, **kwargs)
                manager.pool_classes_by_scheme = tracked_pool_classes()
                return manager

        _tracked_adapter = TrackedAdapter
    return _tracked_adapter


def user_agent() -> str:
    import requests

    return f"loadgen/1.0 python-requests/{requests.__version__}"


class Client:
    """One worker's keep-alive session, with one prepared request per target URL:
    preparing a request and reading the proxy, CA and netrc environment on every send
    costs about a third of the client's CPU."""

    def __init__(self, urls: Sequence[str], timeout: float) -> None:
        import requests

        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent()
        adapter = tracked_adapter_class()(pool_connections=len(urls), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.targets: list[tuple[requests.PreparedRequest, dict[str, Any]]] = []
        for url in urls:
            request = self.session.prepare_request(requests.Request("GET", url))
            options: dict[str, Any] = dict(
                self.session.merge_environment_settings(request.url, {}, None, None, None)
            )
            options.update(
                timeout=(timeout, timeout),  # connect, and each read; the watchdog bounds the whole
                allow_redirects=False,  # a redirect is counted as the status it is
            )
            self.targets.append((request, options))

    def send(self, slot: int) -> requests.Response:
        request, options = self.targets[slot % len(self.targets)]  # targets in turn, by slot
        return self.session.send(request, **options)

    def close(self) -> None:
        self.session.close()


class LoadGenerator:
    """The slot schedule, the workers that send it, and the run's counts.

    Thread-safety: every count and the schedule are guarded by `_lock`; `notify` (called
    when a worker exits) must be safe to call from any thread."""

    def __init__(
        self,
        options: Options,
        clock: Callable[[], float] = time.monotonic,
        notify: Callable[[], None] = lambda: None,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.options = options
        self.clock = clock
        self.notify = notify
        self.client_factory = client_factory or (
            lambda: Client(options.server_addrs, options.timeout)
        )
        self.started = 0.0
        self.end: float | None = None
        self.total_slots: int | None = None
        self.stop = threading.Event()  # no more sends
        self.stopped_at: float | None = None
        self.stopped_before_start = False
        self.begun = False  # /stats can be asked before the first slot
        self._lock = threading.Lock()
        self._next_slot = 0
        self._rng = random.Random()
        self.workers_started = 0
        self.workers_alive = 0
        self._idle = 0  # workers not sending (waiting for a slot, or about to claim one)
        self._flights: dict[int, InFlight] = {}
        self._watchdog_wake = threading.Event()
        self._finished = False
        self.total = Stats(0.0)
        self.interval = Stats(0.0)

    # schedule

    def claim(self) -> tuple[int, float] | None:
        """The next unsent slot and its due time, or None when the run is over."""
        with self._lock:
            if self.stop.is_set():
                return None
            slot = self._next_slot
            if self.total_slots is not None and slot >= self.total_slots:
                return None
            self._next_slot += 1
            jitter = self.options.jitter * self._rng.random()
            return slot, self.started + (slot + jitter) / self.options.rate

    def cutoff(self) -> float | None:
        """When sending ended (DURATION or a stop), or None while it goes on."""
        ends = [t for t in (self.end, self.stopped_at) if t is not None]
        return min(ends) if ends else None

    def scheduled(self, now: float) -> int:
        """Slots due by `now`, or by the end of sending if that came first."""
        cutoff = self.cutoff()
        until = now if cutoff is None else min(now, cutoff)
        if self.stopped_before_start or not self.begun:
            return 0
        return slots_due(until - self.started, self.options.rate, self.total_slots)

    def dropped(self, now: float) -> int:
        """Slots that were due by the end of sending and never sent."""
        if self.cutoff() is None:
            return 0
        return max(0, self.scheduled(now) - self.total.sent)

    # workers

    def begin(self, now: float) -> None:
        """Slot 0 is due `now`; with a DURATION, the end and the number of slots are fixed."""
        self.started = now
        self.begun = True
        self.stopped_before_start = self.stop.is_set()
        self.total = Stats(now)
        self.interval = Stats(now)
        if self.options.duration is not None:
            self.end = now + self.options.duration
            self.total_slots = slot_count(self.options.duration, self.options.rate)

    def start(self) -> None:
        """Start the schedule and its first worker; more start when every one is busy."""
        first_client = None if self.stop.is_set() else self.client_factory()  # ready at slot 0
        self.begin(self.clock())
        threading.Thread(target=self._watch, name="watchdog", daemon=True).start()
        with self._lock:
            spawn = not self.stop.is_set() and self._reserve_worker()
        if spawn:
            self._spawn(first_client)
        elif first_client is not None:
            first_client.close()

    def _reserve_worker(self) -> bool:
        """Count a new worker in, if the cap allows (the caller holds the lock)."""
        if self.workers_started >= self.options.concurrency:
            return False
        self.workers_started += 1
        self.workers_alive += 1
        self._idle += 1
        return True

    def _spawn(self, client: Any = None) -> None:
        name = f"worker-{self.workers_started}"
        threading.Thread(target=self._work, args=(client,), name=name, daemon=True).start()

    def _work(self, client: Any = None) -> None:
        try:
            if client is None:
                client = self.client_factory()
            while (claimed := self.claim()) is not None:
                slot, due = claimed
                if not self._wait_until(due):
                    break
                sent, aborted = self._send(client, slot, due)
                if not sent:
                    break
                if aborted:  # its connection was cut: start the next request afresh
                    client.close()
                    client = self.client_factory()
        finally:
            if client is not None:
                client.close()
            with self._lock:
                self.workers_alive -= 1
                self._idle -= 1
            self.notify()

    def _wait_until(self, due: float) -> bool:
        """Wait for `due`; False if the run stopped first."""
        while (delay := due - self.clock()) > 0:
            if self.stop.wait(min(delay, MAX_WAIT)):
                return False
        return not self.stop.is_set()

    def _send(self, client: Any, slot: int, due: float) -> tuple[bool, bool]:
        """Send one slot: (whether it was sent, whether the watchdog cut it)."""
        sent_at = self.clock()
        flight = InFlight(deadline=sent_at + self.options.timeout)
        with self._lock:
            # Nothing leaves after a stop or after DURATION: such a slot is dropped.
            if self.stop.is_set() or (self.end is not None and sent_at >= self.end):
                return False, False
            late = is_late(due, sent_at)
            self.total.record_send(late)
            self.interval.record_send(late)
            self._flights[slot] = flight
            self._idle -= 1
            # The next slot needs a worker that is not busy: start one if none is left.
            spawn = self._idle == 0 and self._reserve_worker()
        if spawn:
            self._spawn()
        _current.on_socket = lambda sock: self._register(flight, sock)
        status = version = kind = None
        try:
            response = client.send(slot)
            status = response.status_code
            version = version_key(response.headers.get(VERSION_HEADER))
        except Exception as error:  # a worker must outlive whatever one request does
            kind = classify_error(error)
        finally:
            _current.on_socket = None
        done = self.clock()
        with self._lock:
            del self._flights[slot]
            self._idle += 1
            if flight.aborted or done > flight.deadline:
                kind = "timeouts"  # over its total time, however it ended
            for stats in (self.interval, self.total):
                if kind is not None:
                    stats.record_error(kind)
                elif status is not None and version is not None:
                    stats.record_response(status, version, done - due, done - sent_at)
        return True, flight.aborted

    def _register(self, flight: InFlight, sock: socket.socket) -> None:
        with self._lock:
            flight.sock = sock
            if flight.aborted:
                _cut(sock)

    def _watch(self) -> None:
        """Cut every request still in flight at its deadline."""
        step = min(0.1, self.options.timeout / 2)
        while True:
            with self._lock:
                if self._finished:
                    return
                now = self.clock()
                wake_at = now + step
                for flight in self._flights.values():
                    if flight.aborted:
                        continue
                    if flight.deadline <= now:
                        flight.aborted = True
                        if flight.sock is not None:
                            _cut(flight.sock)
                    else:
                        wake_at = min(wake_at, flight.deadline)
            self._watchdog_wake.wait(max(0.001, wake_at - self.clock()))

    def request_stop(self) -> None:
        with self._lock:
            if self.stopped_at is None:
                self.stopped_at = self.clock()
            self.stop.set()

    def in_flight(self) -> int:
        with self._lock:
            return len(self._flights)

    def finish(self) -> int:
        """Stop the watchdog; the number of requests still in flight (abandoned)."""
        with self._lock:
            self._finished = True
            abandoned = len(self._flights)
        self._watchdog_wake.set()
        return abandoned

    # reports

    def take_interval(self) -> tuple[Stats, float]:
        now = self.clock()
        with self._lock:
            stats, self.interval = self.interval, Stats(now)
        return stats, now - stats.started

    def elapsed(self, now: float) -> float:
        if not self.begun:
            return 0.0
        cutoff = self.cutoff()
        until = now if cutoff is None else min(now, cutoff)
        return max(0.0, until - self.started)

    def snapshot(self) -> dict[str, Any]:
        """Running totals, for /stats."""
        now = self.clock()
        with self._lock:
            figures = self.total.to_dict(self.elapsed(now))
            figures["in_flight"] = len(self._flights)
            figures["scheduled"] = self.scheduled(now)
            figures["dropped"] = self.dropped(now)
            figures["workers"] = self.workers_started
        return figures

    def summary(self, abandoned: int) -> dict[str, Any]:
        figures = self.snapshot()
        figures.update(
            url=self.options.label,
            targets=list(self.options.server_addrs),
            target_rate=self.options.rate,
            concurrency=self.options.concurrency,
            abandoned=abandoned,
            run_s=round(self.clock() - self.started, 3),
        )
        figures["achieved_ratio"] = round(figures["actual_rate"] / self.options.rate, 4)
        if self.options.expect_split is not None:
            figures["split"] = judge_split(
                figures["versions"], self.options.expect_split, self.options.split_tolerance
            )
        return figures


# ---------------------------------------------------------------------------
# Signals: a handler that only records, and a self-pipe the main thread waits on


class Wakeup:
    """A pipe the main thread sleeps on. Signals (through signal.set_wakeup_fd) and
    exiting workers write a byte to it, so the main thread wakes at once, and no lock is
    ever taken inside a signal handler (an Event.set() there can deadlock)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)

    def notify(self) -> None:
        with contextlib.suppress(OSError):  # full: a wakeup is already pending
            os.write(self.write_fd, b"\0")

    def wait(self, timeout: float) -> None:
        select.select([self.read_fd], [], [], min(max(0.0, timeout), MAX_WAIT))
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass


class StopSignals:
    """SIGTERM and SIGINT, recorded for the main loop to act on."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, received: list[int] | None = None) -> None:
        self.received: list[int] = [] if received is None else received
        self.wakeup = Wakeup()

    def install(self) -> None:
        for signum in self.SIGNALS:
            signal.signal(signum, self._on_signal)
        signal.set_wakeup_fd(self.wakeup.write_fd, warn_on_full_buffer=False)
        # A supervisor may start loadgen with these blocked so that none is lost before
        # the handlers exist; any that arrived wait, and are delivered now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.received.append(signum)  # atomic; the main loop does the rest


# ---------------------------------------------------------------------------
# Optional status endpoint, so that the pod has a real port for its Service and probes


def start_status_server(generator: LoadGenerator, address: str, port: int) -> ThreadingHTTPServer:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.partition("?")[0]
            if path == "/healthz":
                self._reply(200, b"ok\n", "text/plain; charset=utf-8")
            elif path == "/stats":
                body = json.dumps(generator.snapshot()).encode() + b"\n"
                self._reply(200, body, "application/json")
            else:
                self._reply(404, b"Not Found\n", "text/plain; charset=utf-8")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # probes would flood the output
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in (address or "::") else socket.AF_INET

        def server_bind(self) -> None:
            if self.address_family == socket.AF_INET6:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    try:
        server = Server((address or "::", port), Handler)
    except OSError:
        if address:
            raise
        Server.address_family = socket.AF_INET  # a host without IPv6
        server = Server(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name="status", daemon=True).start()
    return server


# ---------------------------------------------------------------------------


def check_client(options: Options) -> None:
    """Prepare each URL the way the workers will, so that anything requests refuses is a
    usage error now rather than a traceback in every worker."""
    import requests

    for url in options.server_addrs:
        try:
            requests.Request("GET", url).prepare()
        except (requests.exceptions.RequestException, ValueError) as err:
            raise UsageError(f"SERVER_ADDR={url!r} is refused by the HTTP client: {err}") from None


def run(
    options: Options,
    signals: StopSignals,
    out: TextIO = sys.stdout,
    progress: TextIO | None = None,
) -> int:
    progress = progress or (sys.stderr if options.json_summary else out)
    generator = LoadGenerator(options, notify=signals.wakeup.notify)
    status_server = None
    if options.status_port is not None:
        try:
            status_server = start_status_server(
                generator, options.status_address, options.status_port
            )
        except OSError as err:
            print(f"loadgen: error: status port {options.status_port}: {err}", file=sys.stderr)
            return EXIT_FAILED
    url = options.label
    details = [f"concurrency {options.concurrency}", f"timeout {_seconds(options.timeout)}"]
    details.append(f"duration {options.duration:g}s" if options.duration else "until stopped")
    if options.expect_split is not None:
        details.append(f"expecting {format_split(dict(options.expect_split))}")
    if status_server is not None:
        details.append(f"status on port {status_server.server_address[1]}")
    print(
        f"Sending {options.rate:g} request(s) per second to {url} ({', '.join(details)})",
        file=progress,
        flush=True,
    )
    try:
        if signals.received:  # stopped before the first send: nothing is due
            generator.request_stop()
        generator.start()
        next_report = generator.started + options.report_interval
        while not signals.received:
            now = generator.clock()
            if generator.end is not None and now >= generator.end:
                break
            if now >= next_report:
                stats, elapsed = generator.take_interval()
                figures = stats.to_dict(elapsed)
                if options.expect_split is not None:
                    figures["split"] = judge_split(
                        figures["versions"], options.expect_split, options.split_tolerance
                    )
                print(format_report(url, "interval", figures), file=progress, flush=True)
                while next_report <= now:  # a report that came late does not bunch the next
                    next_report += options.report_interval
                continue
            until = next_report if generator.end is None else min(next_report, generator.end)
            signals.wakeup.wait(until - now)
        generator.request_stop()
        # Requests in flight finish, each within its TIMEOUT; a second signal stops waiting.
        signals_seen = len(signals.received)
        deadline = generator.clock() + options.timeout + FINISH_GRACE
        while generator.workers_alive and len(signals.received) <= signals_seen:
            remaining = deadline - generator.clock()
            if remaining <= 0:
                break
            signals.wakeup.wait(remaining)
        abandoned = generator.finish()
    finally:
        if status_server is not None:
            status_server.shutdown()
            status_server.server_close()

    summary = generator.summary(abandoned)
    if options.json_summary:
        print(json.dumps(summary, indent=2), file=out, flush=True)
    else:
        print(format_report(url, "total", summary), file=out, flush=True)
        if abandoned:
            print(f"  {abandoned} request(s) still in flight at exit", file=out, flush=True)
    failures = [
        failure
        for failure in (
            error_rate_failure(summary["error_rate"], options.max_error_rate),
            split_failure(summary.get("split")),
        )
        if failure is not None
    ]
    for failure in failures:
        print(f"loadgen: {failure}", file=sys.stderr, flush=True)
    return EXIT_FAILED if failures else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    signals = StopSignals(EARLY_SIGNALS)  # keeps any signal recorded during the imports
    signals.install()  # before anything slow: a signal at any later moment ends with a summary
    try:
        options = parse_options(argv, os.environ)
        check_client(options)
    except UsageError as err:
        print(f"loadgen: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(options, signals)
    except BrokenPipeError:  # whoever read the reports went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
