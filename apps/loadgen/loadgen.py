#!/usr/bin/env python3
"""loadgen: the mesh tutorial's load generator, open-loop and honest about latency.

Request i is due at start + i/rate whatever the server does, so a slow server cannot
slow the load down (no drift), and latency is measured from that due time as well as
from the actual send, which corrects coordinated omission the way wrk2 does. A pool of
CONCURRENCY worker threads, each with its own keep-alive `requests.Session`, bounds the
requests in flight; a request sent more than LATE_AFTER behind its due time is counted
as late rather than quietly shifting the schedule.

Configuration: SERVER_ADDR and REQUESTS_PER_SECOND (required), DURATION, CONCURRENCY,
TIMEOUT, REPORT_INTERVAL, JITTER, MAX_ERROR_RATE, STATUS_PORT, each env var with a
matching flag (`--help`). See docs/apps.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import requests

USER_AGENT = f"loadgen/1.0 python-requests/{requests.__version__}"
# A send this far behind its due time counts as late: well above the scheduling noise of
# a sleeping thread, well below anything a user would call keeping the rate.
LATE_AFTER = 0.010
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
EXIT_OK, EXIT_ERROR_RATE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A missing or invalid setting: one line on stderr, exit code 2."""


# ---------------------------------------------------------------------------
# Options: flags override env; every value is checked before any thread starts.


@dataclass(frozen=True)
class Options:
    server_addr: str
    rate: float
    duration: float | None = None  # None: until stopped
    concurrency: int = 4
    timeout: float = 2.0
    report_interval: float = 5.0
    jitter: float = 0.0
    json_summary: bool = False
    max_error_rate: float | None = None
    status_port: int | None = None
    status_address: str = ""


def parse_duration(text: str) -> float:
    """`500ms`, `10s`, `2m`, `1h` or a bare number of seconds."""
    value = text.strip().lower()
    scale = 1.0
    for unit, unit_scale in (("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if value.endswith(unit):
            value, scale = value[: -len(unit)], unit_scale
            break
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be a non-negative duration such as 10, 10s, 500ms or 2m")
    return number * scale


def _positive_duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError("must be a duration greater than zero, such as 2, 2s or 500ms")
    return seconds


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError("must be a positive number of requests per second (fractions allowed)")
    return rate


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL, such as http://hello:8080")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return text


def _concurrency(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= 10_000:
        raise ValueError("must be a whole number from 1 to 10000")
    return number


def _fraction(text: str) -> float:
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError("must be a fraction from 0 to 1 (or a percentage such as 5%)")
    return value


def _port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return number


def default_concurrency(rate: float) -> int:
    """Room for a tenth of a second of requests in flight, at least 4, at most 64."""
    return max(4, min(64, math.ceil(rate / 10)))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + message
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="loadgen",
        description="Open-loop constant-rate HTTP load generator. Each flag overrides its env var.",
    )
    add = parser.add_argument
    add("--server-addr", metavar="URL", help="target URL (env SERVER_ADDR, required)")
    add("--rate", metavar="RPS", help="requests per second (env REQUESTS_PER_SECOND, required)")
    add("--duration", help="stop after this long, e.g. 60s (env DURATION; default: until stopped)")
    add("--concurrency", help="maximum requests in flight (env CONCURRENCY; default rate/10, 4-64)")
    add("--timeout", help="per-request timeout (env TIMEOUT; default 2s)")
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
        "--status-port",
        help="serve /healthz and /stats on this port (env STATUS_PORT; default off)",
    )
    add("--json", action="store_true", help="print the final summary as JSON on stdout")
    return parser


def parse_options(argv: list[str] | None, env: Mapping[str, str]) -> Options:
    args = build_parser().parse_args(argv)

    def setting(flag_value: str | None, name: str, parse, default=None, required=False):
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

    server_addr = setting(args.server_addr, "SERVER_ADDR", _url, required=True)
    rate = setting(args.rate, "REQUESTS_PER_SECOND", _rate, required=True)
    duration = setting(args.duration, "DURATION", parse_duration)
    return Options(
        server_addr=server_addr,
        rate=rate,
        duration=duration or None,
        concurrency=setting(
            args.concurrency, "CONCURRENCY", _concurrency, default_concurrency(rate)
        ),
        timeout=setting(args.timeout, "TIMEOUT", _positive_duration, 2.0),
        report_interval=setting(args.report_interval, "REPORT_INTERVAL", _positive_duration, 5.0),
        jitter=setting(args.jitter, "JITTER", _fraction, 0.0),
        json_summary=args.json,
        max_error_rate=setting(args.max_error_rate, "MAX_ERROR_RATE", _fraction),
        status_port=setting(args.status_port, "STATUS_PORT", _port),
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
        figures = {f"p{p:g}": round(self.percentile(p) * 1000, 3) for p in PERCENTILES}
        figures["max"] = round(self.max * 1000, 3)
        return figures


class Stats:
    """Counts for one report interval, or for the whole run."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.sent = 0
        self.late = 0
        self.statuses: Counter[int] = Counter()
        self.timeouts = 0
        self.connection_errors = 0
        self.other_errors = 0
        self.latency = LatencyHistogram()  # from the due time (coordinated omission corrected)
        self.service_latency = LatencyHistogram()  # from the actual send

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

    def to_dict(self, elapsed: float) -> dict:
        return {
            "elapsed_s": round(elapsed, 3),
            "sent": self.sent,
            "completed": self.completed,
            "late": self.late,
            "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
            "timeouts": self.timeouts,
            "connection_errors": self.connection_errors,
            "other_errors": self.other_errors,
            "errors": self.errors,
            "error_rate": self.error_rate(),
            "actual_rate": round(self.sent / elapsed, 3) if elapsed > 0 else 0.0,
            "latency_ms": self.latency.summary_ms(),
            "service_latency_ms": self.service_latency.summary_ms(),
        }


def format_report(url: str, label: str, figures: dict) -> str:
    """The tutorial's progress line, then the statistics."""
    codes = ",".join(f"{code}:{n}" for code, n in figures["statuses"].items()) or "none"
    lines = [
        f"{figures['completed']} request(s) complete to {url}",
        f"  {label} {figures['elapsed_s']:.2f}s: sent={figures['sent']}"
        f" completed={figures['completed']} late={figures['late']}"
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
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The open-loop schedule and the workers


class LoadGenerator:
    def __init__(self, options: Options, clock=time.monotonic) -> None:
        self.options = options
        self.clock = clock
        self.started = 0.0
        self.end: float | None = None
        self.stop = threading.Event()  # no more sends
        self.wake = threading.Event()  # the reporter should stop waiting
        self._lock = threading.Lock()
        self._next_slot = 0
        self._rng = random.Random()
        self._workers: list[threading.Thread] = []
        self._running = 0
        self.in_flight = 0
        self.stopped_at: float | None = None
        self.schedule_done = False
        # How far behind its due time the latest slot was sent: a run that fell behind
        # finishes its last sends after the planned end, and its actual rate shows it.
        self._last_due = -math.inf
        self._last_lag = 0.0
        self.total = Stats(0.0)
        self.interval = Stats(0.0)

    # schedule

    def _claim(self) -> float | None:
        """The due time of the next unsent slot, or None when the run is over."""
        with self._lock:
            if self.stop.is_set():
                return None
            slot = self._next_slot
            base = self.started + slot / self.options.rate
            if self.end is not None and base >= self.end:
                self.schedule_done = True
                return None
            self._next_slot += 1
            jitter = self.options.jitter * self._rng.random()
            return self.started + (slot + jitter) / self.options.rate

    def scheduled(self, now: float) -> int:
        """Slots due by `now` (the number that should have been sent)."""
        if self.end is not None and now >= self.end:
            return math.ceil((self.end - self.started) * self.options.rate)
        return max(0, math.floor((now - self.started) * self.options.rate) + 1)

    # workers

    def start(self) -> None:
        self.started = self.clock()
        self.total = Stats(self.started)
        self.interval = Stats(self.started)
        if self.options.duration is not None:
            self.end = self.started + self.options.duration
        self._running = self.options.concurrency
        for index in range(self.options.concurrency):
            thread = threading.Thread(target=self._work, name=f"worker-{index}", daemon=True)
            self._workers.append(thread)
            thread.start()

    def _work(self) -> None:
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        # One prepared request, sent again and again: preparing it and reading the proxy,
        # CA and netrc environment on every send costs about a third of the client's CPU.
        request = session.prepare_request(requests.Request("GET", self.options.server_addr))
        send_options = session.merge_environment_settings(request.url, {}, None, None, None)
        send_options.update(
            timeout=(self.options.timeout, self.options.timeout),
            allow_redirects=False,  # a redirect is counted as the status it is
        )
        try:
            while True:
                due = self._claim()
                if due is None:
                    break
                delay = due - self.clock()
                if delay > 0 and self.stop.wait(delay):
                    break
                self._send(session, request, send_options, due)
        finally:
            session.close()
            with self._lock:
                self._running -= 1
                if not self._running:
                    self.wake.set()

    def _send(self, session: requests.Session, request, send_options: dict, due: float) -> None:
        sent_at = self.clock()
        late = sent_at - due > LATE_AFTER
        with self._lock:
            self.in_flight += 1
            if due > self._last_due:
                self._last_due, self._last_lag = due, sent_at - due
            for stats in (self.interval, self.total):
                stats.sent += 1
                stats.late += late
        status = error = None
        try:
            response = session.send(request, **send_options)
            status = response.status_code
        except requests.exceptions.Timeout:
            error = "timeouts"
        except requests.exceptions.ConnectionError:
            error = "connection_errors"
        except requests.exceptions.RequestException:
            error = "other_errors"
        done = self.clock()
        with self._lock:
            self.in_flight -= 1
            for stats in (self.interval, self.total):
                if status is None:
                    setattr(stats, error, getattr(stats, error) + 1)
                else:
                    stats.statuses[status] += 1
                    stats.latency.record(done - due)
                    stats.service_latency.record(done - sent_at)

    def request_stop(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = self.clock()
        self.stop.set()
        self.wake.set()

    def wait_for_workers(self, timeout: float) -> int:
        """Join the workers for up to `timeout`; the number of requests still in flight."""
        deadline = self.clock() + timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - self.clock()))
        with self._lock:
            return self.in_flight

    # reports

    def take_interval(self) -> tuple[Stats, float]:
        now = self.clock()
        with self._lock:
            stats, self.interval = self.interval, Stats(now)
        return stats, now - stats.started

    def snapshot(self) -> dict:
        """Running totals, for /stats."""
        now = self.clock()
        with self._lock:
            figures = self.total.to_dict(self._elapsed(now))
            figures["in_flight"] = self.in_flight
            figures["scheduled"] = self.scheduled(now)
        return figures

    def _elapsed(self, now: float) -> float:
        ends = [now]
        if self.end is not None:
            if self.schedule_done:  # every slot was claimed: the run is over
                return self.end + max(0.0, self._last_lag) - self.started
            ends.append(self.end)
        if self.stopped_at is not None:
            ends.append(self.stopped_at)
        return max(0.0, min(ends) - self.started)

    def summary(self, abandoned: int) -> dict:
        figures = self.snapshot()
        figures.update(
            url=self.options.server_addr,
            target_rate=self.options.rate,
            concurrency=self.options.concurrency,
            abandoned=abandoned,
        )
        figures["achieved_ratio"] = round(figures["actual_rate"] / self.options.rate, 4)
        return figures


# ---------------------------------------------------------------------------
# Optional status endpoint, so that the pod has a real port for its Service and probes


def start_status_server(generator: LoadGenerator, address: str, port: int) -> ThreadingHTTPServer:
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

        def log_message(self, format: str, *args) -> None:  # probes would flood the output
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


def run(options: Options, out=sys.stdout, progress=None) -> int:
    progress = progress or (sys.stderr if options.json_summary else out)
    generator = LoadGenerator(options)
    status_server = None
    if options.status_port is not None:
        try:
            status_server = start_status_server(
                generator, options.status_address, options.status_port
            )
        except OSError as err:
            print(f"loadgen: error: status port {options.status_port}: {err}", file=sys.stderr)
            return EXIT_ERROR_RATE
    url = options.server_addr
    details = [f"concurrency {options.concurrency}", f"timeout {options.timeout:g}s"]
    details.append(f"duration {options.duration:g}s" if options.duration else "until stopped")
    if status_server is not None:
        details.append(f"status on port {status_server.server_address[1]}")
    print(
        f"Sending {options.rate:g} request(s) per second to {url} ({', '.join(details)})",
        file=progress,
        flush=True,
    )

    def on_signal(signum, _frame) -> None:
        generator.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        generator.start()
        next_report = generator.started
        while True:
            next_report += options.report_interval
            if generator.wake.wait(max(0.0, next_report - generator.clock())):
                break
            stats, elapsed = generator.take_interval()
            print(format_report(url, "interval", stats.to_dict(elapsed)), file=progress, flush=True)
        generator.stop.set()
        abandoned = generator.wait_for_workers(options.timeout + 0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
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
    if options.max_error_rate is not None:
        rate = summary["error_rate"]
        if rate is None or rate > options.max_error_rate:
            shown = "no finished requests" if rate is None else f"{rate:.2%}"
            print(
                f"loadgen: error rate {shown} exceeds --max-error-rate {options.max_error_rate:.2%}",
                file=sys.stderr,
            )
            return EXIT_ERROR_RATE
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_options(argv, os.environ)
    except UsageError as err:
        print(f"loadgen: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
