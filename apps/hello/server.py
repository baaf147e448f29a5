#!/usr/bin/env python3
"""hello: the mesh tutorial's HTTP server, built to be trusted under a mesh.

`GET /` answers `Hello World!`. `/healthz` is liveness, `/readyz` readiness (503 while
draining). HTTP/1.1 keep-alive on one dual-stack socket, served by a small asyncio
protocol: the standard library's ThreadingHTTPServer spends a thread and several
system calls per request and stays well below the throughput this one reaches (see
bench/bench_server.py and docs/apps.md). Standard library only, so the image needs no
third-party packages and no build tools.

Configuration is environment only; see docs/apps.md for every variable.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import math
import os
import random
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, TextIO, TypeVar
from urllib.parse import parse_qs, urlsplit

HELLO_BODY = b"Hello World!\n"
ALLOW = "GET, HEAD"
# Limits a hostile client runs into. Sized like common proxies' defaults (Envoy: 60 KiB
# of headers, 100 headers); the hello service needs none of that, so ours are tighter.
MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
# A small request body (nothing here uses one) is read and dropped so the connection
# can stay open; a larger one, or a chunked one, is not read: the connection closes.
MAX_DISCARDED_BODY = 64 * 1024
# Bytes buffered behind a request that is still being answered (pipelining) before
# the connection stops reading.
MAX_PIPELINED = 64 * 1024
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
REDACTED = "[REDACTED]"

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_HTTP_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
_FIELD_VALUE_FORBIDDEN = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# What can still become a method while a request line is arriving.
_METHOD_PREFIX = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]*")
_BARE_LF = re.compile(rb"(?<!\r)\n")
# As h11: at most 20 digits (and so no sign, no list, no whitespace inside).
_CONTENT_LENGTH = re.compile(r"[0-9]{1,20}")
_HEADER_VALUE_SAFE = re.compile(r"[\x20-\x7e]*")
_BARE_LOG_VALUE = re.compile(r"[A-Za-z0-9_./:@+-]+")

_DURATION_UNITS = (("us", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0))
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

log = logging.getLogger("hello")
T = TypeVar("T")


class ConfigError(Exception):
    """A bad environment value: reported as one line, exit code 2."""


class BadRequest(Exception):
    """A request that cannot be served; `status` is the answer, the connection closes."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------------------
# Configuration


def parse_duration(text: str) -> float:
    """`250ms`, `1.5s`, `2m`, `100us` or a bare number of seconds -> seconds (>= 0)."""
    value = text.strip().lower()
    scale = 1.0
    for unit, unit_scale in _DURATION_UNITS:
        if value.endswith(unit):
            value, scale = value[: -len(unit)], unit_scale
            break
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"not a duration: {text!r}")
    return number * scale


def parse_percent(text: str) -> float:
    number = float(text)
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise ValueError(f"not a percentage: {text!r}")
    return number


def parse_status(text: str) -> int:
    code = int(text)
    if not 200 <= code <= 599:
        raise ValueError(f"not an HTTP status between 200 and 599: {text!r}")
    return code


@dataclass(frozen=True)
class FaultRule:
    """Fortio-style choices: `(value, percent)` pairs tried in order, so
    `503:10,429:5` answers 503 to 10% and 429 to another 5% of the requests."""

    choices: tuple[tuple[float, float], ...] = ()

    @classmethod
    def parse(
        cls, text: str, parse_value: Callable[[str], float], default_percent: float = 100
    ) -> FaultRule:
        choices = []
        for item in text.split(","):
            value, sep, percent = item.strip().partition(":")
            choices.append((parse_value(value), parse_percent(percent) if sep else default_percent))
        if sum(percent for _, percent in choices) > 100:
            raise ValueError(f"percentages add up to more than 100: {text!r}")
        return cls(tuple(choices))

    def pick(self, roll: float) -> float | None:
        """The value chosen for a roll in [0, 100), or None for no fault."""
        threshold = 0.0
        for value, percent in self.choices:
            threshold += percent
            if roll < threshold:
                return value
        return None


@dataclass(frozen=True)
class Settings:
    port: int = 8080
    listen_address: str = ""
    version: str = ""
    pod_name: str = ""
    log_format: str = "text"
    log_level: int = logging.INFO
    # SIGTERM: keep serving (readiness 503, `Connection: close`) for drain_delay while
    # endpoints and sidecars learn the pod is going; then up to drain_seconds to finish.
    drain_delay: float = 5.0
    drain_seconds: float = 10.0
    access_log: bool = True
    header_timeout: float = 10.0
    idle_timeout: float = 620.0
    fault_delay: FaultRule = field(default_factory=FaultRule)
    fault_status: FaultRule = field(default_factory=FaultRule)
    fault_max_delay: float = 5.0
    fault_query: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str, parse: Callable[[str], T], default: T) -> T:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                return parse(raw)
            except ValueError as err:
                raise ConfigError(f"{name}={raw!r} is invalid: {err}") from None

        def header_value(raw: str) -> str:
            if not _HEADER_VALUE_SAFE.fullmatch(raw):
                raise ValueError("only printable ASCII is allowed in a response header")
            return raw

        def port(raw: str) -> int:
            number = int(raw)
            if not 0 <= number <= 65535:
                raise ValueError("must be between 0 and 65535")
            return number

        def choice(options: Mapping[str, T]) -> Callable[[str], T]:
            def parse(raw: str) -> T:
                if raw.lower() not in options:
                    raise ValueError(f"must be one of {', '.join(options)}")
                return options[raw.lower()]

            return parse

        def boolean(raw: str) -> bool:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError("must be true or false")

        def positive_duration(raw: str) -> float:
            seconds = parse_duration(raw)
            if seconds <= 0:
                raise ValueError("must be greater than zero")
            return seconds

        def fault(
            value_name: str, percent_name: str, parse_value: Callable[[str], float]
        ) -> FaultRule:
            percent: float | None = get(percent_name, parse_percent, None)
            rule = get(
                value_name,
                lambda raw: FaultRule.parse(raw, parse_value, 100 if percent is None else percent),
                FaultRule(),
            )
            if percent is not None and not rule.choices:
                raise ConfigError(f"{percent_name} is set but {value_name} is not")
            return rule

        max_delay = get("FAULT_MAX_DELAY", parse_duration, cls.fault_max_delay)
        delay_rule = fault("FAULT_DELAY", "FAULT_DELAY_PERCENT", parse_duration)
        return cls(
            port=get("PORT", port, cls.port),
            listen_address=env.get("LISTEN_ADDRESS", "").strip(),
            version=get("VERSION", header_value, ""),
            pod_name=get("POD_NAME", header_value, ""),
            log_format=get("LOG_FORMAT", choice({"text": "text", "json": "json"}), "text"),
            log_level=get(
                "LOG_LEVEL",
                choice(
                    {
                        "debug": logging.DEBUG,
                        "info": logging.INFO,
                        "warning": logging.WARNING,
                        "error": logging.ERROR,
                    }
                ),
                logging.INFO,
            ),
            drain_delay=get("DRAIN_DELAY", parse_duration, cls.drain_delay),
            drain_seconds=get("DRAIN_SECONDS", parse_duration, cls.drain_seconds),
            access_log=get("ACCESS_LOG", boolean, True),
            header_timeout=get("HEADER_TIMEOUT", positive_duration, cls.header_timeout),
            idle_timeout=get("IDLE_TIMEOUT", positive_duration, cls.idle_timeout),
            fault_delay=FaultRule(
                tuple((min(delay, max_delay), pct) for delay, pct in delay_rule.choices)
            ),
            fault_status=fault("FAULT_STATUS", "FAULT_STATUS_PERCENT", parse_status),
            fault_max_delay=max_delay,
            fault_query=get("FAULT_QUERY", boolean, True),
        )


# ---------------------------------------------------------------------------
# Logging: one line per event, text `key=value` or JSON; values are escaped so that
# nothing a client sends can forge a log line. Request lines are buffered (LogSink):
# one write a flush instead of one a request, which halved throughput before.

# A buffered request line reaches stdout within this time, or sooner once this many
# characters are waiting; every other record, a drain and the exit flush it at once.
ACCESS_LOG_FLUSH_SECONDS = 0.5
ACCESS_LOG_FLUSH_CHARS = 64 * 1024
# An error that can repeat in a tight loop (accept() out of file descriptors, an
# event-loop error) is logged at most once per this many seconds per message, with the
# count of records it suppressed.
LOOP_ERROR_INTERVAL = 1.0


def _text_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and _BARE_LOG_VALUE.fullmatch(value):
        return value
    return json.dumps(value)


class _Clock:
    """RFC 3339 UTC timestamps with milliseconds, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int(created * 1000) % 1000:03d}Z"


_clock = _Clock()


def _timestamp(created: float) -> str:
    return _clock.timestamp(created)


def text_line(created: float, level: str, message: str, fields: Mapping[str, object]) -> str:
    parts = [_timestamp(created), level, message]
    parts.extend(f"{key}={_text_value(value)}" for key, value in fields.items())
    return " ".join(parts)


def json_line(created: float, level: str, message: str, fields: Mapping[str, object]) -> str:
    entry: dict[str, object] = {"time": _timestamp(created), "severity": level, "message": message}
    entry.update(fields)
    return json.dumps(entry)


def _record_fields(record: logging.LogRecord) -> dict[str, object]:
    fields = dict(getattr(record, "fields", None) or {})
    if record.exc_info:  # the exception, on the same line: never a multi-line traceback
        fields["error"] = repr(record.exc_info[1])
    return fields


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\n", " ")
        return text_line(record.created, record.levelname, message, _record_fields(record))


class JsonFormatter(logging.Formatter):
    """`severity` and `message` are the names Cloud Logging reads from JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        return json_line(
            record.created, record.levelname, record.getMessage(), _record_fields(record)
        )


class LogSink:
    """stdout, shared by the logging handler (written at once) and the access log (buffered).
    Buffered request lines go out before any other record, so the order is kept."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._pending: list[str] = []
        self._pending_chars = 0
        self._timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def add(self, line: str) -> None:
        self._pending.append(line)
        self._pending_chars += len(line)
        if self._pending_chars >= ACCESS_LOG_FLUSH_CHARS:
            self.flush()
        elif self._timer is None and self.loop is not None:
            self._timer = self.loop.call_later(ACCESS_LOG_FLUSH_SECONDS, self.flush)

    def write(self, line: str) -> None:
        self._pending.append(line)
        self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self._pending_chars = 0
            self.stream.write(text)
            self.stream.flush()


class SinkHandler(logging.Handler):
    def __init__(self, sink: LogSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> LogSink:
    sink = LogSink(stream or sys.stdout)
    handler = SinkHandler(sink)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # LOG_LEVEL=debug is for request headers, not for the event loop's internals.
    logging.getLogger("asyncio").setLevel(max(settings.log_level, logging.INFO))
    return sink


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: REDACTED if name in REDACTED_HEADERS else value for name, value in headers.items()
    }


class RateLimitedLog:
    """At most one error record per `interval` for each message, carrying the number of
    records it suppressed since the previous one."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        # message -> [monotonic time of the last record, records suppressed since]
        self._seen: dict[str, list[float]] = {}

    def log(self, message: str, fields: Mapping[str, object]) -> None:
        now = time.monotonic()
        seen = self._seen.get(message)
        if seen is not None and now - seen[0] < self.interval:
            seen[1] += 1
            return
        if len(self._seen) > 256:  # messages naming objects vary; keep the table small
            self._seen.clear()
        self._seen[message] = [now, 0]
        suppressed = int(seen[1]) if seen is not None else 0
        log.error(message, extra={"fields": {**fields, "suppressed": suppressed}})


class LoopErrorLimiter:
    """The event loop's exception handler: one line per record, and per message at most one
    record per `interval`, carrying how many it suppressed since the last one."""

    def __init__(self, interval: float = LOOP_ERROR_INTERVAL) -> None:
        self._log = RateLimitedLog(interval)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message") or "event loop error").replace("\n", " ")
        exc = context.get("exception")
        self._log.log(message, {"error": repr(exc)} if exc is not None else {})


# ---------------------------------------------------------------------------
# HTTP/1.1 parsing and responses


@dataclass
class Request:
    method: str
    target: str
    path: str
    query: str
    http11: bool
    headers: dict[str, str]
    keep_alive: bool
    # How the body is delimited: ("content-length", n) (n = 0 without a body) or ("chunked", 0).
    framing: tuple[str, int]
    # Bytes of body read and dropped after the head (a small Content-Length body).
    body_length: int
    # The body is not read (chunked, too large, or awaiting 100-continue): close after.
    unread_body: bool


def parse_request_line(line: bytes) -> tuple[bytes, bytes, bool]:
    """`METHOD SP TARGET SP HTTP/1.x` -> (method, target, is HTTP/1.1)."""
    parts = line.split(b" ")
    if len(parts) != 3:  # also HTTP/0.9's `GET /`
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise BadRequest(400, "malformed method")
    if not _TARGET.fullmatch(target):
        raise BadRequest(400, "malformed request target")
    if version == b"HTTP/1.1":
        return method, target, True
    if version == b"HTTP/1.0":
        return method, target, False
    if _HTTP_VERSION.fullmatch(version):
        raise BadRequest(505, "unsupported HTTP version")
    raise BadRequest(400, "malformed HTTP version")


def find_head(buffer: bytes | bytearray) -> tuple[int, int] | None:
    """Where the first request head in `buffer` starts and ends (the index of its blank
    line), or None while it is incomplete. Rejects as soon as the bytes so far cannot
    begin a valid request, so a TLS ClientHello, HTTP/0.9 or bare-LF client gets its 400
    at once rather than a 408 after HEADER_TIMEOUT."""
    start = 0
    while buffer.startswith(b"\r\n", start):  # tolerated before a request line (RFC 9112 2.2)
        start += 2
    line_end = buffer.find(b"\n", start)
    if line_end < 0:
        if len(buffer) - start > MAX_REQUEST_LINE:
            raise BadRequest(414, "request line too long")
        method = _METHOD_PREFIX.match(buffer, start)
        stop = method.end() if method is not None else start
        if stop < len(buffer) and (buffer[stop] != 0x20 or stop == start):
            raise BadRequest(400, "malformed method")  # e.g. 0x16, a TLS handshake
        return None
    if line_end == start or buffer[line_end - 1] != 0x0D:
        raise BadRequest(400, "bare LF line ending")
    if line_end - 1 - start > MAX_REQUEST_LINE:
        raise BadRequest(414, "request line too long")
    end = buffer.find(b"\r\n\r\n", line_end - 1)
    if end < 0:
        parse_request_line(bytes(buffer[start : line_end - 1]))
        if _BARE_LF.search(buffer, line_end + 1):
            raise BadRequest(400, "bare LF line ending")
        if len(buffer) - start > MAX_HEAD_BYTES:
            raise BadRequest(431, "request header too large")
        return None
    if end - start > MAX_HEAD_BYTES:
        raise BadRequest(431, "request header too large")
    return start, end


def next_request(buffer: bytes | bytearray) -> tuple[Request, int] | None:
    """The first complete request in `buffer` and how many bytes it takes (head, blank
    line and a small body), or None while more bytes are needed."""
    found = find_head(buffer)
    if found is None:
        return None
    start, end = found
    request = parse_head(bytes(buffer[start:end]))
    total = end + 4 + request.body_length
    if len(buffer) < total:
        return None  # the rest of a small body is still on its way
    return request, total


def parse_head(head: bytes) -> Request:
    """Parse a request line and header fields (without the final blank line)."""
    lines = head.split(b"\r\n")
    method, target, http11 = parse_request_line(lines[0])
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, "too many header fields")

    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise BadRequest(400, "obsolete line folding")
        name, sep, value = line.partition(b":")
        # Also rejects whitespace before the colon (a smuggling vector).
        if not sep or not _TOKEN.fullmatch(name):
            raise BadRequest(400, "malformed header field")
        value = value.strip(b" \t")
        if _FIELD_VALUE_FORBIDDEN.search(value):
            raise BadRequest(400, "control character in header field")
        key = name.decode("ascii").lower()
        text = value.decode("latin-1")
        if key in headers:
            if key == "host":
                raise BadRequest(400, "more than one Host field")  # RFC 9112 3.2
            if key == "content-length":
                if headers[key] != text:
                    raise BadRequest(400, "conflicting content-length fields")
            else:
                headers[key] = headers[key] + ("; " if key == "cookie" else ", ") + text
        else:
            headers[key] = text

    if http11 and "host" not in headers:
        raise BadRequest(400, "missing Host field")
    framing, body_length, unread_body = ("content-length", 0), 0, False
    if "transfer-encoding" in headers:
        if "content-length" in headers or not http11:
            raise BadRequest(400, "ambiguous message framing")
        if headers["transfer-encoding"].lower() != "chunked":
            raise BadRequest(501, "unsupported transfer coding")  # RFC 9112 6.1
        framing, unread_body = ("chunked", 0), True
    elif "content-length" in headers:
        raw_length = headers["content-length"]
        if not _CONTENT_LENGTH.fullmatch(raw_length):
            raise BadRequest(400, "malformed Content-Length")
        framing = ("content-length", int(raw_length))
        body_length = framing[1]
        if body_length > MAX_DISCARDED_BODY or (body_length and "expect" in headers):
            body_length, unread_body = 0, True

    if "connection" in headers:
        connection = {token.strip() for token in headers["connection"].lower().split(",")}
        keep_alive = "close" not in connection if http11 else "keep-alive" in connection
    else:
        keep_alive = http11

    text_target = target.decode("ascii")
    if text_target.startswith("/"):
        path, _, query = text_target.partition("?")
    elif text_target.startswith(("http://", "https://")):
        try:
            parts = urlsplit(text_target)
        except ValueError:
            raise BadRequest(400, "malformed request target") from None
        path, query = parts.path or "/", parts.query
    elif text_target == "*" and method == b"OPTIONS":
        path, query = "*", ""
    else:
        raise BadRequest(400, "unsupported request target form")
    return Request(
        method=method.decode("ascii"),
        target=text_target,
        path=path,
        query=query,
        http11=http11,
        headers=headers,
        keep_alive=keep_alive and not unread_body,
        framing=framing,
        body_length=body_length,
        unread_body=unread_body,
    )


@dataclass
class Response:
    status: int
    body: bytes
    extra_headers: tuple[tuple[str, str], ...] = ()
    close: bool = False
    fault: str = ""


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def status_response(status: int, **kwargs) -> Response:
    return Response(status, f"{reason_phrase(status)}\n".encode(), **kwargs)


class HttpDate:
    """The Date field, formatted once a second rather than once a request."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = formatdate(second, usegmt=True).encode("ascii")
        return self._value


# ---------------------------------------------------------------------------
# The application: routing, readiness and fault injection, no I/O.


class HelloApp:
    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.draining = False
        self._rng = rng or random.Random()
        static = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if settings.version:
            static.append(("X-Version", settings.version))
        if settings.pod_name:
            static.append(("X-Pod-Name", settings.pod_name))
        self.static_headers = "".join(f"{name}: {value}\r\n" for name, value in static).encode()

    def respond(self, request: Request) -> tuple[Response, float]:
        """The response and the delay before sending it."""
        path = request.path
        if path not in ("/", "/healthz", "/readyz"):
            return status_response(404), 0.0
        if request.method not in ("GET", "HEAD"):
            return status_response(405, extra_headers=(("Allow", ALLOW),)), 0.0
        if path == "/healthz":
            return Response(200, b"ok\n"), 0.0
        if path == "/readyz":
            if self.draining:
                return Response(503, b"draining\n"), 0.0
            return Response(200, b"ready\n"), 0.0
        return self._hello(request)

    def _hello(self, request: Request) -> tuple[Response, float]:
        delay_rule, status_rule = self.settings.fault_delay, self.settings.fault_status
        if request.query and self.settings.fault_query:
            try:
                delay_rule, status_rule = self._query_faults(request.query, delay_rule, status_rule)
            except ValueError:
                return Response(400, b"Bad Request: invalid delay or status parameter\n"), 0.0
        delay = delay_rule.pick(self._rng.random() * 100) if delay_rule.choices else None
        status = status_rule.pick(self._rng.random() * 100) if status_rule.choices else None
        faults = []
        if delay:
            faults.append(f"delay={delay:g}s")
        if status is not None:
            faults.append(f"status={int(status)}")
            response = status_response(int(status))
        else:
            response = Response(200, HELLO_BODY)
        response.fault = ",".join(faults)
        return response, delay or 0.0

    def _query_faults(
        self, query: str, delay_rule: FaultRule, status_rule: FaultRule
    ) -> tuple[FaultRule, FaultRule]:
        params = parse_qs(query, max_num_fields=20)
        if "delay" in params:
            rule = FaultRule.parse(params["delay"][-1], parse_duration)
            cap = self.settings.fault_max_delay
            delay_rule = FaultRule(tuple((min(d, cap), pct) for d, pct in rule.choices))
        if "status" in params:
            status_rule = FaultRule.parse(params["status"][-1], parse_status)
        return delay_rule, status_rule


# ---------------------------------------------------------------------------
# The connection: framing, keep-alive, timeouts, pipelining, backpressure, drain.

# Unsent response bytes a connection may hold (asyncio's write-buffer high-water mark).
# Past it the connection stops answering and reading until the client has taken its
# responses down to the low-water mark, so a client that pipelines and never reads costs
# at most this much (plus MAX_PIPELINED of unread requests), not the whole attack.
WRITE_BUFFER_HIGH = 64 * 1024
WRITE_BUFFER_LOW = 16 * 1024
# After the server closes its side (FIN), it reads and drops what the client still sends
# for up to this long before closing the socket: a request that crossed the FIN in flight
# then meets a clean end of stream, which clients retry, never a reset that could also
# destroy the response before it (RFC 9112 9.6).
LINGER_SECONDS = 2.0
LISTEN_BACKLOG = 1024
# Connections taken per wake-up of the listening socket, so that a burst cannot starve
# the connections already open; and the pause after accept() ran out of descriptors.
ACCEPT_BATCH = 64
ACCEPT_RETRY_SECONDS = 0.1


class HttpConnection(asyncio.Protocol):
    def __init__(self, server: HelloServer) -> None:
        self.server = server
        self.app = server.app
        self.loop = server.loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set on connect
        self.peer = "-"
        self.buffer = bytearray()
        self.busy = False  # a request is waiting out a fault delay
        self.write_paused = False  # the client is not taking its responses
        self.reading_paused = False
        self.closing = False  # no more requests: the server closed its side or is closing
        self.half_closed = False  # the client sent its FIN
        self._timer: asyncio.TimerHandle | None = None
        self._timer_kind = ""
        self._idle_since = 0.0  # loop time the connection last became idle
        self._pending: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        """Nothing received that is still to be answered, nothing being answered."""
        return not (self.busy or self.buffer or self.write_paused or self.closing)

    @property
    def unfinished(self) -> bool:
        """A request received (or arriving) that has not been answered yet."""
        return not self.closing and (self.busy or bool(self.buffer))

    def has_unread_input(self) -> bool:
        """Whether the kernel holds bytes the event loop has not read yet: a request that
        arrived just as the drain closes idle connections, to be answered, not dropped."""
        transport_socket = self.transport.get_extra_info("socket")
        if transport_socket is None:
            return False
        try:
            with socket.socket(fileno=os.dup(transport_socket.fileno())) as sock:
                return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except OSError:  # BlockingIOError: nothing waiting
            return False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH, low=WRITE_BUFFER_LOW)
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "-"
        self.server.connections.add(self)
        self._set_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        self._cancel_timer()
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
            self.busy = False
        self.server.maybe_finish_drain()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # lingering after our FIN: read and drop
        self.buffer += data
        if self.busy or self.write_paused:
            self._update_reading()
            return
        self._process()

    def eof_received(self) -> bool:
        self.half_closed = True
        # A half-closed client may still wait for answers: a delayed one, or requests held
        # back while it was not reading. Otherwise the transport closes (after flushing).
        return not self.closing and (self.busy or (self.write_paused and bool(self.buffer)))

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()
        if not self.closing:
            self._cancel_timer()
            self._start_timer("send", self.server.settings.header_timeout)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.closing:
            return
        if self._timer_kind == "send":
            self._cancel_timer()
        if not self.busy:
            self._process()

    # request handling

    def _process(self) -> None:
        try:
            while self.buffer and not (self.busy or self.closing or self.write_paused):
                found = next_request(self.buffer)
                if found is None:
                    break
                request, size = found
                del self.buffer[:size]
                if self._timer_kind == "request":  # the next bytes get a fresh deadline
                    self._cancel_timer()
                self._dispatch(request)
        except BadRequest as err:
            self._reject(err)
        except Exception:  # a bug must cost one connection, never the server
            log.exception("internal error", extra={"fields": {"remote": self.peer}})
            self._write(status_response(500), head_only=False, keep_alive=False)
        if self.closing:
            return
        if self.half_closed and not (self.busy or self.write_paused):
            self.close()  # nothing more can arrive, and everything received is answered
            return
        if not self.write_paused:
            self._set_timer()
        self._update_reading()

    def _update_reading(self) -> None:
        """Read while this connection's unanswered input and unsent output are small."""
        pause = not self.closing and (self.write_paused or len(self.buffer) > MAX_PIPELINED)
        if pause != self.reading_paused and not self.transport.is_closing():
            self.reading_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def _dispatch(self, request: Request) -> None:
        started = time.perf_counter()
        try:
            response, delay = self.app.respond(request)
        except Exception:
            log.exception("internal error", extra={"fields": {"remote": self.peer}})
            response, delay = status_response(500, close=True), 0.0
        if delay > 0:
            self.busy = True
            self._cancel_timer()
            if self.server.debug:
                log.debug(
                    "delaying response",
                    extra={"fields": {"path": request.path, "delay": delay, "remote": self.peer}},
                )
            self._pending = self.loop.call_later(
                delay, self._finish_delayed, request, response, started
            )
        else:
            self._finish(request, response, started)

    def _finish_delayed(self, request: Request, response: Response, started: float) -> None:
        self._pending = None
        self.busy = False
        self._finish(request, response, started)
        if not self.closing:
            self._process()
        self.server.maybe_finish_drain()

    def _finish(self, request: Request, response: Response, started: float) -> None:
        keep_alive = request.keep_alive and not response.close
        if keep_alive and self.server.draining:
            # Close after this response, unless a pipelined request is already here: that
            # one is answered too, and the close goes on the last response instead.
            keep_alive = self.buffer.find(b"\r\n\r\n") >= 0
        self._write(
            response,
            head_only=request.method == "HEAD",
            keep_alive=keep_alive,
            http10_keep_alive=keep_alive and not request.http11,
        )
        self.server.access_log(request, response, time.perf_counter() - started, self.peer)

    def _reject(self, err: BadRequest) -> None:
        log.info(
            "bad request",
            extra={"fields": {"status": err.status, "reason": err.reason, "remote": self.peer}},
        )
        self._write(status_response(err.status), head_only=False, keep_alive=False)

    def _write(
        self,
        response: Response,
        head_only: bool,
        keep_alive: bool,
        http10_keep_alive: bool = False,
    ) -> None:
        if self.closing:
            return
        head = [
            f"HTTP/1.1 {response.status} {reason_phrase(response.status)}\r\n".encode(),
            b"Date: ",
            self.server.date.get(),
            b"\r\n",
            self.app.static_headers,
            b"Content-Length: %d\r\n" % len(response.body),
        ]
        head.extend(f"{name}: {value}\r\n".encode() for name, value in response.extra_headers)
        if not keep_alive:
            head.append(b"Connection: close\r\n")
        elif http10_keep_alive:
            head.append(b"Connection: keep-alive\r\n")
        head.append(b"\r\n")
        if not head_only:
            head.append(response.body)
        self.transport.write(b"".join(head))
        if not keep_alive:
            self.close()

    def close(self) -> None:
        """Graceful close: FIN after the last response, then linger (read and drop)."""
        if self.closing:
            return
        self.closing = True
        self.buffer.clear()
        self._cancel_timer()
        if self.transport.is_closing():
            return
        if self.half_closed or not self.transport.can_write_eof():
            self.transport.close()  # flushes what is buffered, then closes
            return
        self.transport.write_eof()  # FIN once what is buffered has been sent
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        self._start_timer("linger", LINGER_SECONDS)

    def abort(self) -> None:
        self.closing = True
        self._cancel_timer()
        self.transport.abort()

    # timers: idle between requests, a deadline for a request's head and body, a deadline
    # for a client that takes no responses, and the linger after our FIN

    def _set_timer(self) -> None:
        if self.busy or self.closing:
            return
        kind = "request" if self.buffer else "idle"
        if kind == "idle":
            # The idle timer is not re-armed after every request (a timer handle a request
            # cost a fifth of the request path): it checks this when it fires.
            self._idle_since = self.loop.time()
        if kind == self._timer_kind:
            return  # a started request keeps its first deadline, however slowly it trickles
        self._cancel_timer()
        timeout = self.server.settings.header_timeout if kind == "request" else self._idle_timeout
        self._start_timer(kind, timeout)

    @property
    def _idle_timeout(self) -> float:
        return self.server.settings.idle_timeout if self.server.accepting else LINGER_SECONDS

    def _start_timer(self, kind: str, seconds: float) -> None:
        self._timer_kind = kind
        self._timer = self.loop.call_later(seconds, self._on_timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_kind = ""

    def _on_timeout(self) -> None:
        self._timer = None
        kind, self._timer_kind = self._timer_kind, ""
        if kind == "request":
            log.info("request timeout", extra={"fields": {"status": 408, "remote": self.peer}})
            self._write(status_response(408), head_only=False, keep_alive=False)
        elif kind == "send":
            log.info("send timeout", extra={"fields": {"remote": self.peer}})
            self.abort()  # the client took nothing for HEADER_TIMEOUT: drop what it left
        elif kind == "linger":
            if self.transport.get_write_buffer_size():
                self.abort()
            else:
                self.transport.close()
        else:
            remaining = self._idle_since + self._idle_timeout - self.loop.time()
            if remaining > 0:  # a request came and went since the timer was set
                self._start_timer("idle", remaining)
            else:
                self.close()


# ---------------------------------------------------------------------------
# The server: listening socket, signals, drain.


def make_listen_socket(address: str, port: int) -> socket.socket:
    """A bound socket: dual-stack `::` when the host has IPv6 (IPv4 clients arrive as
    ::ffff:a.b.c.d), else 0.0.0.0; or exactly `address` when one is given."""
    if address:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        candidates = [(family, address)]
    else:
        candidates = [(socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")]
    last_error: OSError | None = None
    for family, host in candidates:
        if family == socket.AF_INET6 and not socket.has_ipv6:
            continue
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as err:  # no IPv6 in this kernel or namespace
            last_error = err
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
            sock.bind((host, port))
        except OSError as err:
            sock.close()
            last_error = err
            if address or err.errno == getattr(socket, "EADDRINUSE", 98):
                raise
            continue
        return sock
    raise last_error or OSError("no address family available")


class HelloServer:
    """Drain timeline (docs/apps.md): SIGTERM -> readiness 503 and `Connection: close` on
    every response, still accepting, for DRAIN_DELAY -> stop accepting, close idle
    connections, finish what was received for up to DRAIN_SECONDS -> exit 0."""

    def __init__(self, settings: Settings, sink: LogSink | None = None) -> None:
        self.settings = settings
        self.app = HelloApp(settings)
        self.date = HttpDate()
        self.sink = sink or LogSink(sys.stdout)
        self.connections: set[HttpConnection] = set()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set in start
        self.accepting = True
        self._listen_socket: socket.socket | None = None
        self._accept_retry: asyncio.TimerHandle | None = None
        # Accepted sockets whose transport is still being set up (connect_accepted_socket).
        self._handshakes: set[asyncio.Task[Any]] = set()
        self._accept_errors = RateLimitedLog(LOOP_ERROR_INTERVAL)
        self._stopped: asyncio.Future[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self.debug = log.isEnabledFor(logging.DEBUG)
        self._json = settings.log_format == "json"
        self._line_start = '{"time": "' if self._json else ""
        self._line_parts: dict[tuple[str, str, int, str, str, str], tuple[str, str]] = {}

    @property
    def draining(self) -> bool:
        return self.app.draining

    async def start(self) -> tuple[str, int]:
        self.loop = asyncio.get_running_loop()
        self.loop.set_exception_handler(LoopErrorLimiter())
        self.sink.loop = self.loop
        self._stopped = self.loop.create_future()
        sock = make_listen_socket(self.settings.listen_address, self.settings.port)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
        self._listen_socket = sock
        self.loop.add_reader(sock.fileno(), self._accept, ACCEPT_BATCH)
        # Before the `Starting server` line: a signal right after it must drain, not kill.
        self.loop.add_signal_handler(signal.SIGTERM, self.begin_drain, "SIGTERM")
        # Ctrl-C is a person at a terminal, not a load balancer: no delay.
        self.loop.add_signal_handler(signal.SIGINT, self.begin_drain, "SIGINT")
        host, port = sock.getsockname()[:2]
        return host, port

    # Accepting is done here rather than by loop.create_server, for two reasons: asyncio's
    # loop retries accept() up to its backlog times per wake-up when file descriptors run
    # out (about a thousand log records a second), and its server, when closed, resets the
    # connections the kernel had already completed, whose requests would be lost.

    def _accept(self, limit: int) -> None:
        sock = self._listen_socket
        if sock is None:
            return
        for _ in range(limit):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as err:
                if err.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                self._accept_errors.log(
                    "accept failed, retrying", {"error": err.strerror or repr(err)}
                )
                self.loop.remove_reader(sock.fileno())
                self._accept_retry = self.loop.call_later(ACCEPT_RETRY_SECONDS, self._resume_accept)
                return
            conn.setblocking(False)
            handshake = self.loop.create_task(
                self.loop.connect_accepted_socket(lambda: HttpConnection(self), conn)
            )
            self._handshakes.add(handshake)
            handshake.add_done_callback(self._handshake_done)

    def _resume_accept(self) -> None:
        self._accept_retry = None
        if self.accepting and self._listen_socket is not None:
            self.loop.add_reader(self._listen_socket.fileno(), self._accept, ACCEPT_BATCH)
            self._accept(ACCEPT_BATCH)

    def _handshake_done(self, task: asyncio.Task[Any]) -> None:
        self._handshakes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("connection setup failed", extra={"fields": {"error": repr(task.exception())}})
        self.maybe_finish_drain()

    async def serve_until_stopped(self) -> None:
        assert self._stopped is not None
        await self._stopped

    def access_log(self, request: Request, response: Response, seconds: float, peer: str) -> None:
        if not self.settings.access_log:
            return
        user_agent = request.headers.get("user-agent", "")
        if self.debug:  # with headers: every line differs, nothing to cache
            fields: dict[str, object] = {
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": round(seconds * 1000, 3),
                "user_agent": user_agent,
                "remote": peer,
            }
            if response.fault:
                fields["fault"] = response.fault
            fields["headers"] = redact_headers(request.headers)
            format_line = json_line if self._json else text_line
            self.sink.add(format_line(time.time(), "INFO", "request", fields) + "\n")
            return
        # Requests repeat: the escaped text around the duration is formatted once per
        # distinct (method, path, status, user agent, peer, fault) and reused.
        key = (request.method, request.path, response.status, user_agent, peer, response.fault)
        parts = self._line_parts.get(key)
        if parts is None:
            if len(self._line_parts) >= 1024:
                self._line_parts.clear()
            parts = self._line_parts[key] = self._format_parts(*key)
        before, after = parts
        duration = round(seconds * 1000, 3)
        self.sink.add(f"{self._line_start}{_timestamp(time.time())}{before}{duration}{after}")

    def _format_parts(
        self, method: str, path: str, status: int, user_agent: str, peer: str, fault: str
    ) -> tuple[str, str]:
        """The access line, split around its duration: (after the timestamp, the end)."""
        head = {"method": method, "path": path, "status": status}
        tail: dict[str, object] = {"user_agent": user_agent, "remote": peer}
        if fault:
            tail["fault"] = fault
        if self._json:
            return (
                '", "severity": "INFO", "message": "request", '
                + json.dumps(head)[1:-1]
                + ', "duration_ms": ',
                ", " + json.dumps(tail)[1:] + "\n",
            )
        text_head = " ".join(f"{k}={_text_value(v)}" for k, v in head.items())
        text_tail = " ".join(f"{k}={_text_value(v)}" for k, v in tail.items())
        return f" INFO request {text_head} duration_ms=", f" {text_tail}\n"

    def begin_drain(self, signal_name: str) -> None:
        if self.app.draining:
            log.warning("second signal, closing now", extra={"fields": {"signal": signal_name}})
            self._stop(forced=True)
            return
        self.app.draining = True
        delay = 0.0 if signal_name == "SIGINT" else self.settings.drain_delay
        log.info(
            "Draining",
            extra={
                "fields": {
                    "signal": signal_name,
                    "connections": len(self.connections),
                    "drain_delay": delay,
                    "drain_seconds": self.settings.drain_seconds,
                }
            },
        )
        self._timers.append(self.loop.call_later(delay, self._stop_accepting))

    def _stop_accepting(self) -> None:
        self.accepting = False
        sock, self._listen_socket = self._listen_socket, None
        if self._accept_retry is not None:
            self._accept_retry.cancel()
        if sock is not None:
            self.loop.remove_reader(sock.fileno())
            # Take what the kernel already accepted: closing a listener resets those.
            self._listen_socket = sock
            self._accept(1 << 30)
            self._listen_socket = None
            sock.close()
        idle = [conn for conn in self.connections if conn.idle and not conn.has_unread_input()]
        log.info(
            "Stopped accepting",
            extra={
                "fields": {
                    "connections": len(self.connections),
                    "idle_closed": len(idle),
                    "unfinished_requests": sum(conn.unfinished for conn in self.connections),
                }
            },
        )
        for conn in idle:
            conn.close()
        self._timers.append(self.loop.call_later(self.settings.drain_seconds, self._stop, True))
        self.maybe_finish_drain()

    def maybe_finish_drain(self) -> None:
        if not self.accepting and not self.connections and not self._handshakes:
            self._stop(forced=False)

    def _stop(self, forced: bool) -> None:
        if self._stopped is None or self._stopped.done():
            return
        for timer in self._timers:
            timer.cancel()
        unfinished = sum(conn.unfinished for conn in self.connections)
        for conn in list(self.connections):
            if forced:
                conn.abort()
            else:
                conn.close()
        log.info(
            "Stopped",
            extra={"fields": {"drained": not forced, "unfinished_requests": unfinished}},
        )
        self._stopped.set_result(None)


async def serve(settings: Settings, sink: LogSink | None = None) -> int:
    server = HelloServer(settings, sink)
    try:
        host, port = await server.start()
    except OSError as err:
        log.error("cannot listen", extra={"fields": {"port": settings.port, "error": str(err)}})
        return 1
    log.info(
        f"Starting server on port {port}",
        extra={
            "fields": {
                "port": port,
                "address": host,
                "version": settings.version,
                "pod": settings.pod_name,
            }
        },
    )
    try:
        await server.serve_until_stopped()
    finally:
        server.sink.flush()
    return 0


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as err:
        print(f"hello: error: {err}", file=sys.stderr)
        return 2
    sink = configure_logging(settings)
    return asyncio.run(serve(settings, sink))


if __name__ == "__main__":
    sys.exit(main())
