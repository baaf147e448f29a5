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
_HEADER_VALUE_SAFE = re.compile(r"[\x20-\x7e]*")
_BARE_LOG_VALUE = re.compile(r"[A-Za-z0-9_./:@+-]+")

_DURATION_UNITS = (("us", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0))
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

log = logging.getLogger("hello")


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
    def parse(cls, text: str, parse_value: Callable[[str], float], default_percent: float = 100):
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
    drain_seconds: float = 10.0
    header_timeout: float = 10.0
    idle_timeout: float = 620.0
    fault_delay: FaultRule = field(default_factory=FaultRule)
    fault_status: FaultRule = field(default_factory=FaultRule)
    fault_max_delay: float = 5.0
    fault_query: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str, parse: Callable[[str], object], default: object) -> object:
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

        def choice(options: Mapping[str, object]) -> Callable[[str], object]:
            def parse(raw: str) -> object:
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

        def fault(value_name: str, percent_name: str, parse_value) -> FaultRule:
            percent = get(percent_name, parse_percent, None)
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
            drain_seconds=get("DRAIN_SECONDS", parse_duration, cls.drain_seconds),
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
# nothing a client sends can forge a log line.


def _text_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and _BARE_LOG_VALUE.fullmatch(value):
        return value
    return json.dumps(value)


def _timestamp(created: float) -> str:
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record.created), record.levelname, record.getMessage()]
        fields = getattr(record, "fields", None)
        if fields:
            parts.extend(f"{key}={_text_value(value)}" for key, value in fields.items())
        if record.exc_info:
            parts.append(f"error={_text_value(repr(record.exc_info[1]))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """`severity` and `message` are the names Cloud Logging reads from JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _timestamp(record.created),
            "severity": record.levelname,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["error"] = repr(record.exc_info[1])
        return json.dumps(entry)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # LOG_LEVEL=debug is for request headers, not for the event loop's internals.
    logging.getLogger("asyncio").setLevel(max(settings.log_level, logging.INFO))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: REDACTED if name in REDACTED_HEADERS else value for name, value in headers.items()
    }


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
    body_length: int
    # The body is not read (chunked, too large, or awaiting 100-continue): close after.
    unread_body: bool


def parse_head(head: bytes) -> Request:
    """Parse a request line and header fields (without the final blank line)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise BadRequest(400, "malformed method")
    if not _TARGET.fullmatch(target):
        raise BadRequest(400, "malformed request target")
    if version == b"HTTP/1.1":
        http11 = True
    elif version == b"HTTP/1.0":
        http11 = False
    elif _HTTP_VERSION.fullmatch(version):
        raise BadRequest(505, "unsupported HTTP version")
    else:
        raise BadRequest(400, "malformed HTTP version")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, "too many header fields")

    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        # Also rejects obsolete line folding and whitespace before the colon (smuggling vectors).
        if not sep or not _TOKEN.fullmatch(name):
            raise BadRequest(400, "malformed header field")
        value = value.strip(b" \t")
        if _FIELD_VALUE_FORBIDDEN.search(value):
            raise BadRequest(400, "control character in header field")
        key = name.decode("ascii").lower()
        text = value.decode("latin-1")
        if key in headers:
            if key in ("host", "content-length") and headers[key] != text:
                raise BadRequest(400, f"conflicting {key} fields")
            if key not in ("host", "content-length"):
                headers[key] = headers[key] + ("; " if key == "cookie" else ", ") + text
        else:
            headers[key] = text

    if http11 and "host" not in headers:
        raise BadRequest(400, "missing Host field")
    body_length, unread_body = 0, False
    if "transfer-encoding" in headers:
        if "content-length" in headers or not http11:
            raise BadRequest(400, "ambiguous message framing")
        unread_body = True
    elif "content-length" in headers:
        raw_length = headers["content-length"]
        if not raw_length.isdigit() or not raw_length.isascii():
            raise BadRequest(400, "malformed Content-Length")
        body_length = int(raw_length)
        if body_length > MAX_DISCARDED_BODY or (body_length and "expect" in headers):
            body_length, unread_body = 0, True

    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if http11 else "keep-alive" in connection

    text_target = target.decode("ascii")
    if text_target.startswith("/"):
        path, _, query = text_target.partition("?")
    elif text_target.startswith(("http://", "https://")):
        parts_ = urlsplit(text_target)
        path, query = parts_.path or "/", parts_.query
    elif text_target == "*" and method == b"OPTIONS":
        path, query = "*", ""
    else:
        raise BadRequest(400, "malformed request target")
    return Request(
        method=method.decode("ascii"),
        target=text_target,
        path=path,
        query=query,
        http11=http11,
        headers=headers,
        keep_alive=keep_alive and not unread_body,
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
# The connection: framing, keep-alive, timeouts, pipelining, drain.


class HttpConnection(asyncio.Protocol):
    def __init__(self, server: HelloServer) -> None:
        self.server = server
        self.app = server.app
        self.transport: asyncio.Transport | None = None
        self.peer = "-"
        self.buffer = bytearray()
        self.busy = False  # a request is waiting out a fault delay
        self.closing = False
        self.paused = False
        self.half_closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_kind = ""
        self._pending: asyncio.TimerHandle | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
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
            return
        self.buffer += data
        if self.busy:
            if len(self.buffer) > MAX_PIPELINED and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return
        self._process()

    def eof_received(self) -> bool:
        # A half-closed client may still wait for the answer to a delayed request.
        self.half_closed = True
        return self.busy

    # request handling

    def _process(self) -> None:
        try:
            while self.buffer and not self.busy and not self.closing:
                request = self._next_request()
                if request is None:
                    break
                self._dispatch(request)
        except BadRequest as err:
            self._reject(err)
        except Exception:  # a bug must cost one connection, never the server
            log.exception("internal error", extra={"fields": {"remote": self.peer}})
            self._write(status_response(500), head_only=False, keep_alive=False)
        if not self.closing:
            self._set_timer()

    def _next_request(self) -> Request | None:
        buffer = self.buffer
        while buffer.startswith(b"\r\n"):  # tolerated before a request line (RFC 9112 2.2)
            del buffer[:2]
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise BadRequest(431, "request header too large")
            if len(buffer) > MAX_REQUEST_LINE and buffer.find(b"\r\n") < 0:
                raise BadRequest(414, "request line too long")
            return None
        if end > MAX_HEAD_BYTES:
            raise BadRequest(431, "request header too large")
        request = parse_head(bytes(buffer[:end]))
        total = end + 4 + request.body_length
        if len(buffer) < total:
            return None  # the rest of a small body is still on its way
        del buffer[:total]
        self._timer_kind = ""  # the next bytes start a new request, with a fresh deadline
        return request

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
            self._pending = self.server.loop.call_later(
                delay, self._finish_delayed, request, response, started
            )
        else:
            self._finish(request, response, started)

    def _finish_delayed(self, request: Request, response: Response, started: float) -> None:
        self._pending = None
        self.busy = False
        self._finish(request, response, started)
        self.server.maybe_finish_drain()
        if self.half_closed:
            self.close()
        if self.paused and not self.closing:
            self.paused = False
            self.transport.resume_reading()
        if not self.closing:
            self._process()

    def _finish(self, request: Request, response: Response, started: float) -> None:
        keep_alive = request.keep_alive and not response.close and not self.server.draining
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
        self, response: Response, head_only: bool, keep_alive: bool, http10_keep_alive=False
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
        if not self.closing:
            self.closing = True
            self._cancel_timer()
            self.transport.close()

    # timers: idle between requests, a deadline for a request's head and body

    def _set_timer(self) -> None:
        if self.busy or self.closing:
            return
        kind = "request" if self.buffer else "idle"
        if kind == self._timer_kind:
            return  # a started request keeps its first deadline, however slowly it trickles
        self._cancel_timer()
        self._timer_kind = kind
        settings = self.server.settings
        timeout = settings.header_timeout if kind == "request" else settings.idle_timeout
        self._timer = self.server.loop.call_later(timeout, self._on_timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_kind = ""

    def _on_timeout(self) -> None:
        self._timer = None
        if self._timer_kind == "request":
            log.info("request timeout", extra={"fields": {"status": 408, "remote": self.peer}})
            self._write(status_response(408), head_only=False, keep_alive=False)
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
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = HelloApp(settings)
        self.date = HttpDate()
        self.connections: set[HttpConnection] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Server | None = None
        self._stopped: asyncio.Future | None = None
        self._drain_deadline: asyncio.TimerHandle | None = None
        self._debug_headers = log.isEnabledFor(logging.DEBUG)

    @property
    def draining(self) -> bool:
        return self.app.draining

    async def start(self) -> tuple[str, int]:
        self.loop = asyncio.get_running_loop()
        self._stopped = self.loop.create_future()
        sock = make_listen_socket(self.settings.listen_address, self.settings.port)
        self._listener = await self.loop.create_server(
            lambda: HttpConnection(self), sock=sock, backlog=1024
        )
        host, port = sock.getsockname()[:2]
        return host, port

    async def serve_until_stopped(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, self.begin_drain, signal.Signals(signum).name)
        await self._stopped

    def access_log(self, request: Request, response: Response, seconds: float, peer: str) -> None:
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": round(seconds * 1000, 3),
            "user_agent": request.headers.get("user-agent", ""),
            "remote": peer,
        }
        if response.fault:
            fields["fault"] = response.fault
        if self._debug_headers:
            fields["headers"] = redact_headers(request.headers)
        log.info("request", extra={"fields": fields})

    def begin_drain(self, signal_name: str) -> None:
        if self.app.draining:
            log.warning("second signal, closing now", extra={"fields": {"signal": signal_name}})
            self._stop(forced=True)
            return
        self.app.draining = True
        log.info(
            "Draining",
            extra={
                "fields": {
                    "signal": signal_name,
                    "connections": len(self.connections),
                    "drain_seconds": self.settings.drain_seconds,
                }
            },
        )
        self._listener.close()
        self._drain_deadline = self.loop.call_later(self.settings.drain_seconds, self._stop, True)
        self.maybe_finish_drain()

    def maybe_finish_drain(self) -> None:
        if self.app.draining and not any(conn.busy for conn in self.connections):
            self._stop(forced=False)

    def _stop(self, forced: bool) -> None:
        if self._stopped.done():
            return
        if self._drain_deadline is not None:
            self._drain_deadline.cancel()
        unfinished = sum(conn.busy for conn in self.connections)
        for conn in list(self.connections):
            conn.close()
        log.info(
            "Stopped",
            extra={"fields": {"drained": not forced, "unfinished_requests": unfinished}},
        )
        self._stopped.set_result(None)


async def serve(settings: Settings) -> int:
    server = HelloServer(settings)
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
    await server.serve_until_stopped()
    return 0


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as err:
        print(f"hello: error: {err}", file=sys.stderr)
        return 2
    configure_logging(settings)
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
