"""The hello server, run as a real process on loopback: endpoints, logs, hostile clients, drain."""

from __future__ import annotations

import asyncio
import http.client
import io
import itertools
import json
import logging
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref

import pytest
from hello_process import SERVER, clean_env, load_server_module, start_hello

hello = load_server_module()


@pytest.fixture
def server():
    proc = start_hello({"VERSION": "v2", "POD_NAME": "hello-abc"})
    yield proc
    proc.kill()


def request(server, method="GET", path="/", headers=None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    if own:
        conn.close()
    return response, body


# Bytes read past the end of a response (pipelining), kept for the next read_response.
_unread: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response from a raw socket: status, headers (lower-case names), body."""
    data = _unread.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += sock.recv(65536)
    _unread[sock] = rest[length:]
    return status, headers, rest[:length]


def is_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


# --- endpoints ---------------------------------------------------------------


def test_hello_answers_with_version_and_pod_headers_over_keep_alive(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    first, body = request(server, conn=conn)
    assert first.status == 200
    assert body == b"Hello World!\n"
    assert first.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert first.getheader("Content-Length") == "13"
    assert first.getheader("X-Version") == "v2"
    assert first.getheader("X-Pod-Name") == "hello-abc"
    assert first.getheader("Date")
    assert first.getheader("Connection") is None  # HTTP/1.1: kept alive by default
    sock = conn.sock
    second, body = request(server, conn=conn)
    assert (second.status, body) == (200, b"Hello World!\n")
    assert conn.sock is sock  # the same TCP connection served both
    conn.close()


def test_head_has_headers_and_no_body(server):
    response, body = request(server, "HEAD", "/")
    assert response.status == 200
    assert response.getheader("Content-Length") == "13"
    assert body == b""


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [("/healthz", 200, b"ok\n"), ("/readyz", 200, b"ready\n"), ("/nope", 404, b"Not Found\n")],
)
def test_health_readiness_and_unknown_paths(server, path, status, body):
    response, got = request(server, path=path)
    assert (response.status, got) == (status, body)


@pytest.mark.parametrize(("method", "path"), [("POST", "/"), ("DELETE", "/healthz"), ("PUT", "/")])
def test_other_methods_get_405_with_allow(server, method, path):
    response, body = request(server, method, path)
    assert response.status == 405
    assert response.getheader("Allow") == "GET, HEAD"
    assert body == b"Method Not Allowed\n"


def test_request_input_is_never_reflected(server):
    hostile = "/<script>alert(1)</script>"
    response, body = request(server, path=hostile)
    assert response.status == 404
    assert b"script" not in body
    assert response.getheader("Content-Type").startswith("text/plain")
    bad, body = request(server, path="/?delay=%3Cscript%3E")
    assert bad.status == 400
    assert b"script" not in body


def test_http10_closes_unless_keep_alive_is_asked(server):
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        status, headers, body = read_response(sock)
        assert (status, body) == (200, b"Hello World!\n")
        assert headers["connection"] == "close"
        assert is_closed(sock)
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert read_response(sock)[1]["connection"] == "keep-alive"
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert read_response(sock)[0] == 200


def test_pipelined_requests_are_answered_in_order(server):
    with server.connect() as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        assert [read_response(sock)[0] for _ in range(3)] == [200, 404, 200]
        assert is_closed(sock)


def test_small_request_body_is_read_and_connection_kept(server):
    with server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        assert read_response(sock)[0] == 405
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(sock)[0] == 200


def test_ipv6_loopback():
    proc = start_hello(host="::1")
    try:
        response, body = request(proc)
        assert (response.status, body) == (200, b"Hello World!\n")
    finally:
        proc.kill()


def test_default_listener_is_dual_stack():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    # Bound, never listening: nothing can connect to it while the test looks at it.
    sock = hello.make_listen_socket("", 0)
    try:
        assert sock.family == socket.AF_INET6
        assert sock.getsockname()[0] == "::"
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
    finally:
        sock.close()


# --- logging -----------------------------------------------------------------


def test_startup_and_access_log_lines(server):
    assert any("Starting server" in line for line in server.lines)
    request(server, path="/nope", headers={"User-Agent": 'probe "1"'})
    line = server.wait_for_line(lambda line: "path=/nope" in line)
    assert "method=GET" in line
    assert "status=404" in line
    assert "duration_ms=" in line
    assert 'user_agent="probe \\"1\\""' in line  # quoted and escaped, not raw


def test_json_logs_and_debug_headers_are_redacted():
    proc = start_hello({"LOG_FORMAT": "json", "LOG_LEVEL": "debug"})
    try:
        secrets = {
            "Authorization": "Bearer s3cret-token",
            "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
            "Cookie": "session=s3cret-cookie",
        }
        request(proc, path="/", headers={**secrets, "User-Agent": "tester/1", "X-Trace": "t-1"})
        line = proc.wait_for_line(lambda line: '"message": "request"' in line)
        entry = json.loads(line)
        assert entry["severity"] == "INFO"
        assert entry["method"] == "GET"
        assert entry["path"] == "/"
        assert entry["status"] == 200
        assert entry["user_agent"] == "tester/1"
        assert isinstance(entry["duration_ms"], float)
        assert entry["headers"]["x-trace"] == "t-1"
        for name in ("authorization", "proxy-authorization", "cookie"):
            assert entry["headers"][name] == "[REDACTED]"
        output = "\n".join(proc.lines)
        assert "s3cret" not in output
        assert "cHJveHk6c2VjcmV0" not in output
        assert json.loads(proc.lines[0])["message"].startswith("Starting server")
    finally:
        proc.kill()


def test_access_log_can_be_switched_off():
    proc = start_hello({"ACCESS_LOG": "off"})
    try:
        assert request(proc)[0].status == 200
        with proc.connect() as sock:  # other records stay
            sock.sendall(b"BAD\r\n\r\n")
            assert read_response(sock)[0] == 400
        proc.wait_for_line(lambda line: "bad request" in line)
        proc.signal(signal.SIGINT)
        assert proc.wait() == 0
        assert not any(" request method=" in line for line in proc.lines)
    finally:
        proc.kill()


def test_headers_are_not_logged_at_info(server):
    request(server, headers={"X-Trace": "t-9", "Authorization": "Bearer nope"})
    server.wait_for_line(lambda line: "method=GET" in line)
    assert not any("t-9" in line or "nope" in line for line in server.lines)


# --- hostile clients ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 400),
        (b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", 400),
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET nope HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # TLS to a plain port
    ],
)
def test_malformed_requests_get_an_error_and_others_are_still_served(server, raw, status):
    with server.connect() as sock:
        sock.sendall(raw)
        got, headers, _ = read_response(sock)
        assert got == status
        assert headers["connection"] == "close"
        assert is_closed(sock)
    response, _ = request(server)
    assert response.status == 200


def test_oversized_headers_get_431(server):
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        assert read_response(sock)[0] == 431
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Many: 1\r\n" * 150 + b"\r\n")
        assert read_response(sock)[0] == 431
    with server.connect() as sock:  # a request line that never ends
        sock.sendall(b"GET /" + b"a" * 9_000)
        assert read_response(sock)[0] == 414
    assert request(server)[0].status == 200


def test_slow_client_times_out_while_others_are_served():
    proc = start_hello({"HEADER_TIMEOUT": "1s"})
    try:
        with proc.connect(timeout=10) as slow:
            slow.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # and never the blank line
            for _ in range(3):
                assert request(proc)[0].status == 200
            slow.sendall(b"X-Drip: 1\r\n")  # trickling bytes does not extend the deadline
            status = read_response(slow)[0]
            assert status == 408
            assert is_closed(slow)
        assert request(proc)[0].status == 200
    finally:
        proc.kill()


def test_idle_timeout_counts_from_the_last_request():
    proc = start_hello({"IDLE_TIMEOUT": "1s"})
    try:
        with proc.connect(timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert read_response(sock)[0] == 200
            time.sleep(0.5)  # the gap under test, not a synchronisation
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert read_response(sock)[0] == 200
            last_answer = time.monotonic()
            assert is_closed(sock)  # closed by the server once idle for IDLE_TIMEOUT
            assert time.monotonic() - last_answer >= 0.9
    finally:
        proc.kill()


def test_hundreds_of_idle_connections(server):
    idle = [server.connect() for _ in range(300)]
    try:
        idle[0].sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(idle[0])[0] == 200
        assert request(server)[0].status == 200
        idle[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(idle[-1])[0] == 200
    finally:
        for sock in idle:
            sock.close()
    assert request(server)[0].status == 200


@pytest.fixture
def patient_server():
    """A server that would wait a minute for a request head: an answer within the client's
    10 s timeout proves the rejection was immediate, not the 408 at HEADER_TIMEOUT."""
    proc = start_hello({"HEADER_TIMEOUT": "60s"})
    yield proc
    proc.kill()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", id="tls-client-hello"),
        pytest.param(b"GET /\r\n", id="http-0.9"),
        pytest.param(b"GET / HTTP/1.1\nHost: a\n\n", id="lf-only"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\nX: 1\n", id="bare-lf-in-headers"),
        pytest.param(b" GET / HTTP/1.1\r\n", id="leading-space"),
    ],
)
def test_requests_that_cannot_be_http_get_400_at_once(patient_server, raw):
    with patient_server.connect(timeout=10) as sock:
        sock.sendall(raw)
        status, headers, _ = read_response(sock)
        assert status == 400
        assert headers["connection"] == "close"
        assert is_closed(sock)


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "split"])
def test_over_long_request_line_gets_414_however_it_arrives(server, split):
    line = b"GET /" + b"a" * 9_000 + b" HTTP/1.1\r\n"
    with server.connect() as sock:
        if split:
            sock.sendall(line[:4_000])
            sock.sendall(line[4_000:] + b"Host: a\r\n\r\n")
        else:
            sock.sendall(line + b"Host: a\r\n\r\n")
        assert read_response(sock)[0] == 414
        assert is_closed(sock)


def test_client_that_pipelines_and_never_reads_cannot_grow_memory():
    """Issue 17 point 2: without write backpressure this took the server from 23 MiB to
    700+ MiB. The client sends pipelined GETs and never reads; it stops when 100 MB are
    sent, when the server has stopped taking bytes for 2 s, or after 20 s."""
    proc = start_hello({"ACCESS_LOG": "off"})
    try:
        assert request(proc)[0].status == 200
        baseline = proc.rss_kib()
        chunk = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 2_400  # about 64 KiB
        limit_kib = 8 * 1024
        sent, stalled = 0, False
        deadline = time.monotonic() + 20
        with proc.connect(timeout=2) as attacker:
            while sent < 100_000_000 and time.monotonic() < deadline:
                try:
                    attacker.sendall(chunk)
                except TimeoutError:
                    stalled = True
                    break
                sent += len(chunk)
                if proc.rss_kib() - baseline > limit_kib:
                    break  # already failed: no need to push on
            peak = proc.rss_kib("VmHWM")
            # The server still serves everyone else meanwhile.
            assert request(proc)[0].status == 200
        assert peak - baseline <= limit_kib, (
            f"RSS {baseline} -> {peak} KiB after {sent / 1e6:.1f} MB of requests"
        )
        assert stalled or sent >= 100_000_000
    finally:
        proc.kill()


def test_client_that_takes_no_responses_is_dropped_after_header_timeout():
    proc = start_hello({"ACCESS_LOG": "off", "HEADER_TIMEOUT": "1s"})
    try:
        chunk = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 2_400
        with proc.connect(timeout=2) as attacker:
            deadline = time.monotonic() + 30
            # Backpressure stops the server reading, so a send blocks (TimeoutError) or
            # meets the reset of the server dropping the connection after 1 s.
            with pytest.raises((TimeoutError, ConnectionResetError)):
                while time.monotonic() < deadline:
                    attacker.sendall(chunk)
            proc.wait_for_line(lambda line: "send timeout" in line)
        assert request(proc)[0].status == 200
    finally:
        proc.kill()


def test_out_of_file_descriptors_is_logged_once_a_second_on_one_line():
    """Issue 17 point 10: at EMFILE asyncio logged about 40k two-line records in 6 s."""

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))

    proc = start_hello(preexec_fn=few_descriptors)
    clients = []
    try:
        for _ in range(40):  # more than the server can accept; the kernel queues the rest
            clients.append(proc.connect(timeout=10))
        about_accept = re.compile(r"ERROR .*accept")
        proc.wait_for_line(lambda line: bool(about_accept.search(line)))
        later = re.compile(r"ERROR accept failed.*suppressed=[1-9]")
        proc.wait_for_line(lambda line: bool(later.search(line)))  # a second later
        records = [line for line in proc.lines if about_accept.search(line)]
        assert 2 <= len(records) <= 4
        stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|ERROR) ")
        assert all(stamp.match(line) for line in proc.lines), proc.lines  # one line each
        assert "Too many open files" in records[0]
    finally:
        for sock in clients:
            sock.close()
    try:
        # Descriptors are free again: the server accepts and answers.
        assert request(proc)[0].status == 200
    finally:
        proc.kill()


# --- fault injection --------------------------------------------------------------


def test_faults_from_env_hit_the_app_path_only():
    proc = start_hello({"FAULT_STATUS": "503", "FAULT_STATUS_PERCENT": "100"})
    try:
        response, body = request(proc)
        assert (response.status, body) == (503, b"Service Unavailable\n")
        assert request(proc, path="/healthz")[0].status == 200
        assert request(proc, path="/readyz")[0].status == 200
        line = proc.wait_for_line(lambda line: "status=503" in line)
        assert 'fault="status=503"' in line
    finally:
        proc.kill()


def test_fault_percentage_is_applied_to_a_share_of_requests():
    proc = start_hello({"FAULT_STATUS": "500:50"})
    try:
        conn = http.client.HTTPConnection(proc.host, proc.port, timeout=10)
        statuses = [request(proc, conn=conn)[0].status for _ in range(200)]
        conn.close()
        assert set(statuses) == {200, 500}
        # Binomial(200, 0.5): outside 50..150 with probability below 1e-12.
        assert 50 <= statuses.count(500) <= 150
    finally:
        proc.kill()


def test_faults_from_query_parameters_with_capped_delay():
    proc = start_hello({"FAULT_MAX_DELAY": "50ms"})
    try:
        response, _ = request(proc, path="/?status=429&delay=10s")
        assert response.status == 429
        line = proc.wait_for_line(lambda line: "status=429" in line)
        assert 'fault="delay=0.05s,status=429"' in line  # 10s asked, capped at 50ms
        assert request(proc, path="/?delay=abc")[0].status == 400
        assert request(proc, path="/?status=700")[0].status == 400
        assert request(proc, path="/?status=418:0")[0].status == 200
    finally:
        proc.kill()


def test_query_faults_can_be_switched_off():
    proc = start_hello({"FAULT_QUERY": "off"})
    try:
        assert request(proc, path="/?status=503")[0].status == 200
    finally:
        proc.kill()


# --- drain -------------------------------------------------------------------


def test_sigterm_drain_timeline():
    """SIGTERM: readiness 503 and `Connection: close` while still accepting for DRAIN_DELAY;
    then the listener closes, idle connections are closed, the request in flight is
    answered, and the process exits 0."""
    proc = start_hello({"DRAIN_DELAY": "0.5s", "DRAIN_SECONDS": "10", "LOG_LEVEL": "debug"})
    try:
        idle = proc.connect(timeout=10)  # used once, then idle across the drain
        idle.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(idle)[0] == 200
        slow_result = {}

        def slow_request():
            slow_result["response"] = request(proc, path="/?delay=3s")

        slow = threading.Thread(target=slow_request)
        slow.start()
        proc.wait_for_line(lambda line: "delaying response" in line)  # the server has it
        proc.signal(signal.SIGTERM)
        proc.wait_for_line(lambda line: "Draining" in line)

        # During the delay a new connection is still accepted and answered, with close.
        during = request(proc, path="/readyz")
        assert (during[0].status, during[1]) == (503, b"draining\n")
        assert during[0].getheader("Connection") == "close"
        hello_during = request(proc)
        assert hello_during[0].status == 200
        assert hello_during[0].getheader("Connection") == "close"

        stopped = proc.wait_for_line(lambda line: "Stopped accepting" in line)
        assert "idle_closed=1" in stopped  # the idle keep-alive connection
        # A clean end of stream, not a reset, even for a request that crosses the close:
        # the server reads and drops it, so the client sees the FIN and retries elsewhere.
        idle.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert idle.recv(1) == b""
        idle.close()
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection((proc.host, proc.port), timeout=5).close()

        slow.join(15)
        response, body = slow_result["response"]
        assert (response.status, body) == (200, b"Hello World!\n")
        assert response.getheader("Connection") == "close"
        assert proc.wait() == 0
        assert any("Stopped drained=true" in line for line in proc.lines)
    finally:
        proc.kill()


def test_pipelined_requests_received_during_the_drain_are_all_answered():
    proc = start_hello({"DRAIN_DELAY": "60s"})
    try:
        proc.signal(signal.SIGTERM)
        proc.wait_for_line(lambda line: "Draining" in line)
        with proc.connect() as sock:
            sock.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n" * 2
                + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
            )
            answers = [read_response(sock) for _ in range(3)]
            assert [status for status, _, _ in answers] == [200, 200, 200]
            assert answers[2][2] == b"Hello World!\n"
            # Only the last response announces the close.
            assert [headers.get("connection") for _, headers, _ in answers] == [None, None, "close"]
            assert is_closed(sock)
    finally:
        proc.kill()


def test_drain_under_keep_alive_load_loses_no_request():
    """Several keep-alive clients keep sending across SIGTERM, each request with its own
    User-Agent, so the server's access log tells which requests it read. Lost: a request
    the server read whose response the client did not get, or a reset of a connection that
    had carried a response (idle connections must be closed cleanly). A clean end of stream
    before any byte of a response is retried on a fresh connection (RFC 9112 9.3.1).

    One failure is TCP's and no server's: the kernel completes a handshake in the instant
    between the server's last accept and its close of the listener, and the close resets
    that connection. So a reset on a fresh connection, of a request the server never read,
    seen after DRAIN_DELAY has passed since the signal, ends that client as a refused
    connect would."""
    drain_delay = 1.0
    proc = start_hello(
        {"DRAIN_DELAY": f"{drain_delay}s", "DRAIN_SECONDS": "10", "LOG_FORMAT": "json"}
    )
    workers = 6
    lock = threading.Condition()
    stats = {"ok": 0, "closed_by_drain": 0, "retried": 0, "reset_at_close": 0}
    ready_statuses: set[int] = set()
    answered: set[str] = set()
    unanswered: dict[str, str] = {}  # request id -> what the client saw
    lost: list[str] = []  # failures no drain may cause, whatever the server logged
    signalled_at = [float("inf")]

    def client(worker: int, path: str) -> None:
        conn = http.client.HTTPConnection(proc.host, proc.port, timeout=20)
        try:
            for number in itertools.count():
                request_id = f"drain-{worker}-{number}"
                fresh = conn.sock is None
                if fresh:
                    try:
                        conn.connect()
                    except ConnectionRefusedError:
                        return  # the listener is closed: the drain's second phase
                try:
                    conn.request("GET", path, headers={"User-Agent": request_id})
                    response = conn.getresponse()
                    response.read()
                except http.client.RemoteDisconnected:
                    with lock:  # the server had closed this connection: retry
                        stats["retried"] += 1
                        unanswered[request_id] = "end of stream before a response"
                    conn.close()
                    continue
                except (OSError, http.client.HTTPException) as err:
                    conn.close()
                    with lock:
                        unanswered[request_id] = repr(err)
                        after_delay = time.monotonic() >= signalled_at[0] + drain_delay
                        if fresh and isinstance(err, ConnectionResetError) and after_delay:
                            stats["reset_at_close"] += 1
                            return
                        lost.append(f"{request_id} ({'fresh' if fresh else 'used'}): {err!r}")
                    continue
                with lock:
                    stats["ok"] += 1
                    answered.add(request_id)
                    if response.getheader("Connection") == "close":
                        stats["closed_by_drain"] += 1
                    if path == "/readyz":
                        ready_statuses.add(response.status)
                    lock.notify_all()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n, "/")) for n in range(workers)]
    threads.append(threading.Thread(target=client, args=(workers, "/readyz")))
    try:
        for thread in threads:
            thread.start()
        with lock:
            assert lock.wait_for(lambda: stats["ok"] >= 200, timeout=30), stats
        signalled_at[0] = time.monotonic()
        proc.signal(signal.SIGTERM)
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert proc.wait() == 0
        records = [json.loads(line) for line in proc.lines if line.startswith("{")]
        read_by_server = {r["user_agent"] for r in records if r["message"] == "request"}
        print(f"drain under load: {stats}, /readyz {sorted(ready_statuses)}")
        assert answered <= read_by_server  # the log names every request: the check can bite
        lost += [f"{rid}: {seen}" for rid, seen in unanswered.items() if rid in read_by_server]
        assert lost == []
        assert stats["reset_at_close"] <= 1 + workers  # at most one per client
        assert 503 in ready_statuses  # readiness flipped during the delay
        assert stats["closed_by_drain"] > 0  # answered during the drain, with close
    finally:
        proc.kill()


def test_connections_the_kernel_completed_before_the_listener_closes_are_answered():
    """Closing a listening socket resets the connections still in its accept queue, and
    their requests are lost: the drain accepts them first. In process, so that nothing
    but the drain accepts them: the event loop does not run until the drain has begun."""

    async def scenario() -> list[tuple[int, dict[str, str], bytes]]:
        settings = hello.Settings(port=0, listen_address="127.0.0.1", access_log=False)
        server = hello.HelloServer(settings, hello.LogSink(io.StringIO()))
        host, port = await server.start()
        # The kernel completes these handshakes; nothing has called accept().
        clients = [socket.create_connection((host, port), timeout=10) for _ in range(3)]
        for sock in clients:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        server.app.draining = True
        server._stop_accepting()

        def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
            with sock:  # closing our side ends the server's linger
                return read_response(sock)

        answers = await asyncio.gather(*(asyncio.to_thread(answer, s) for s in clients))
        await asyncio.wait_for(server.serve_until_stopped(), 10)
        return answers

    answers = asyncio.run(scenario())
    assert [(status, body) for status, _, body in answers] == [(200, b"Hello World!\n")] * 3
    assert all(headers["connection"] == "close" for _, headers, _ in answers)


# --- the drain, in process --------------------------------------------------
# The process tests above show the drain as a client sees it; these run the server in the
# test's own event loop, so that `nox -s mutate` can tell a mutant of the drain from the
# original. Every step waits for what it needs: a response, a count, the server's stop.

GET_HEAD = b"GET / HTTP/1.1\r\nHost: a\r\n"


def drain_server(drain_delay: float = 60.0, drain_seconds: float = 60.0):
    settings = hello.Settings(
        port=0,
        listen_address="127.0.0.1",
        access_log=False,
        drain_delay=drain_delay,
        drain_seconds=drain_seconds,
    )
    return hello.HelloServer(settings, hello.LogSink(io.StringIO()))


async def until(predicate, timeout: float = 10.0) -> None:
    """Let the event loop run until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the server never got there"
        await asyncio.sleep(0.001)


def kept_alive(host: str, port: int) -> socket.socket:
    """A connection that has had one response and stays open, idle."""
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(GET_HEAD + b"\r\n")
    status, headers, _ = read_response(sock)
    assert status == 200 and headers.get("connection") != "close"
    return sock


async def half_received(server, host: str, port: int) -> socket.socket:
    """A kept-alive connection whose next request the server has read only the head of."""
    sock = await asyncio.to_thread(kept_alive, host, port)
    sock.sendall(GET_HEAD)  # no blank line: the head is not complete
    await until(lambda: any(conn.buffer for conn in server.connections))
    return sock


def one_request(host: str, port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        return read_response(sock)


def drain_records(caplog, message: str) -> list[dict]:
    return [r.fields for r in caplog.records if r.name == "hello" and r.getMessage() == message]


def test_drain_in_process_answers_what_it_received_and_closes_the_rest(caplog):
    caplog.set_level(logging.INFO, logger="hello")

    async def scenario() -> None:
        server = drain_server()
        host, port = await server.start()
        idle = await asyncio.to_thread(kept_alive, host, port)
        half = await asyncio.to_thread(kept_alive, host, port)
        server.begin_drain("SIGTERM")
        # DRAIN_DELAY: still accepting, not ready, and every response closes its connection.
        ready = await asyncio.to_thread(one_request, host, port, "/readyz")
        hello_page = await asyncio.to_thread(one_request, host, port, "/")
        assert (ready[0], ready[1]["connection"]) == (503, "close")
        assert (hello_page[0], hello_page[1]["connection"]) == (200, "close")
        assert server.accepting
        half.sendall(GET_HEAD)  # a request whose head is not complete yet
        await until(lambda: any(conn.buffer for conn in server.connections))
        await until(lambda: len(server.connections) == 2)  # the closed ones are gone
        server._stop_accepting()  # what the DRAIN_DELAY timer does
        assert not server.accepting
        assert await asyncio.to_thread(idle.recv, 1) == b""  # a clean end of stream
        # A request that crosses that FIN is read and dropped, not reset: clients retry it.
        idle.sendall(GET_HEAD + b"\r\n")
        assert await asyncio.to_thread(idle.recv, 1) == b""
        idle.sendall(GET_HEAD + b"\r\n")  # no reset came back: the server reads on, lingering
        with pytest.raises(OSError):  # no longer accepting
            await asyncio.to_thread(socket.create_connection, (host, port), 5)
        assert not server._stopped.done()  # one request is still to be answered
        half.sendall(b"\r\n")
        status, headers, body = await asyncio.to_thread(read_response, half)
        assert (status, headers["connection"], body) == (200, "close", b"Hello World!\n")
        await asyncio.wait_for(server.serve_until_stopped(), 10)
        idle.close()
        half.close()

    asyncio.run(scenario())
    [draining] = drain_records(caplog, "Draining")
    assert draining == {
        "signal": "SIGTERM",
        "connections": 2,
        "drain_delay": 60.0,
        "drain_seconds": 60.0,
    }
    [stopped_accepting] = drain_records(caplog, "Stopped accepting")
    assert stopped_accepting == {"connections": 2, "idle_closed": 1, "unfinished_requests": 1}
    assert drain_records(caplog, "Stopped") == [{"drained": True, "unfinished_requests": 0}]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_request_the_loop_has_not_read_yet_keeps_its_connection_open(caplog):
    # The request reaches the kernel, and the drain closes idle connections, before the
    # event loop has read it: the connection looks idle, and only the kernel knows better.
    caplog.set_level(logging.INFO, logger="hello")

    async def scenario() -> tuple[int, dict[str, str], bytes]:
        server = drain_server()
        host, port = await server.start()
        crossing = await asyncio.to_thread(kept_alive, host, port)
        server.begin_drain("SIGTERM")
        crossing.sendall(GET_HEAD + b"\r\n")  # from the loop's thread: it cannot read it yet
        server._stop_accepting()
        with crossing:
            answer = await asyncio.to_thread(read_response, crossing)
        await asyncio.wait_for(server.serve_until_stopped(), 10)
        return answer

    status, headers, body = asyncio.run(scenario())
    assert (status, headers["connection"], body) == (200, "close", b"Hello World!\n")
    [stopped_accepting] = drain_records(caplog, "Stopped accepting")
    assert stopped_accepting["idle_closed"] == 0


def test_a_second_signal_in_process_resets_what_is_left(caplog):
    caplog.set_level(logging.INFO, logger="hello")

    async def scenario() -> None:
        server = drain_server()
        host, port = await server.start()
        half = await half_received(server, host, port)
        server.begin_drain("SIGTERM")
        server.begin_drain("SIGTERM")
        await asyncio.wait_for(server.serve_until_stopped(), 10)
        with half:  # ended without an answer
            assert await asyncio.to_thread(is_closed, half)

    asyncio.run(scenario())
    assert len(drain_records(caplog, "Draining")) == 1
    assert drain_records(caplog, "second signal, closing now") == [{"signal": "SIGTERM"}]
    assert drain_records(caplog, "Stopped") == [{"drained": False, "unfinished_requests": 1}]


def test_sigint_in_process_skips_the_drain_delay(caplog):
    caplog.set_level(logging.INFO, logger="hello")

    async def scenario() -> None:
        server = drain_server(drain_delay=60.0)
        await server.start()
        server.begin_drain("SIGINT")
        await asyncio.wait_for(server.serve_until_stopped(), 30)  # not 60 s

    asyncio.run(scenario())
    [draining] = drain_records(caplog, "Draining")
    assert (draining["signal"], draining["drain_delay"]) == ("SIGINT", 0.0)
    assert drain_records(caplog, "Stopped") == [{"drained": True, "unfinished_requests": 0}]


def test_drain_seconds_in_process_end_an_unfinished_request(caplog):
    caplog.set_level(logging.INFO, logger="hello")

    async def scenario() -> None:
        server = drain_server(drain_seconds=0.05)
        host, port = await server.start()
        half = await half_received(server, host, port)
        server.begin_drain("SIGTERM")
        server._stop_accepting()
        await asyncio.wait_for(server.serve_until_stopped(), 30)
        with half:  # ended without an answer
            assert await asyncio.to_thread(is_closed, half)

    asyncio.run(scenario())
    assert drain_records(caplog, "Stopped") == [{"drained": False, "unfinished_requests": 1}]


def test_a_failed_connection_setup_is_logged_and_the_drain_goes_on(caplog):
    caplog.set_level(logging.INFO, logger="hello")

    async def scenario() -> None:
        server = drain_server()
        await server.start()
        outcomes = [server.loop.create_future() for _ in range(3)]
        outcomes[0].set_exception(OSError(107, "Transport endpoint is not connected"))
        outcomes[1].cancel()
        outcomes[2].set_result(None)
        server._stop_accepting()  # no connection is left: it would stop but for these
        server._handshakes.update(outcomes)
        for outcome in outcomes:
            server._handshake_done(outcome)
        await asyncio.wait_for(server.serve_until_stopped(), 10)
        assert not server._handshakes

    asyncio.run(scenario())
    failures = drain_records(caplog, "connection setup failed")
    assert failures == [{"error": "OSError(107, 'Transport endpoint is not connected')"}]


def test_drain_timeout_bounds_the_wait():
    proc = start_hello({"DRAIN_SECONDS": "0.5", "FAULT_MAX_DELAY": "30s", "LOG_LEVEL": "debug"})
    try:
        sock = proc.connect(timeout=30)
        sock.sendall(b"GET /?delay=30s HTTP/1.1\r\nHost: a\r\n\r\n")
        proc.wait_for_line(lambda line: "delaying response" in line)
        proc.signal(signal.SIGINT)  # Ctrl-C: no DRAIN_DELAY
        assert proc.wait(timeout=15) == 0
        assert any("drained=false unfinished_requests=1" in line for line in proc.lines)
        assert is_closed(sock)
        sock.close()
    finally:
        proc.kill()


def test_access_log_lines_are_flushed_on_exit():
    proc = start_hello({"DRAIN_DELAY": "0"})
    try:
        conn = http.client.HTTPConnection(proc.host, proc.port, timeout=10)
        for index in range(50):
            request(proc, path=f"/nope{index}", conn=conn)
        conn.close()
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
        paths = [line for line in proc.lines if " request " in line and "path=/nope" in line]
        assert len(paths) == 50
        stopped = next(i for i, line in enumerate(proc.lines) if "Stopped" in line)
        assert all(proc.lines.index(line) < stopped for line in paths)  # order is kept
    finally:
        proc.kill()


# --- configuration -------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"PORT": "http"},
        {"PORT": "70000"},
        {"LOG_FORMAT": "xml"},
        {"LOG_LEVEL": "loud"},
        {"DRAIN_SECONDS": "-1"},
        {"FAULT_STATUS": "700"},
        {"FAULT_STATUS_PERCENT": "10"},
        {"FAULT_DELAY": "1s", "FAULT_DELAY_PERCENT": "150"},
        {"FAULT_DELAY": "soon"},
        {"VERSION": "v1\r\nSet-Cookie: x"},
        {"FAULT_QUERY": "maybe"},
    ],
)
def test_bad_configuration_exits_2_with_one_line(env):
    result = subprocess.run(
        [sys.executable, str(SERVER)],
        env=clean_env({"PORT": "0", "LISTEN_ADDRESS": "127.0.0.1", **env}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("hello: error: ")
    assert next(iter(env)) in lines[0]


def test_port_in_use_is_one_error_line_and_exit_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(SERVER)],
            env=clean_env({"PORT": str(port), "LISTEN_ADDRESS": "127.0.0.1"}),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "cannot listen" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


# --- pure parts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("1.5s", 1.5), ("2m", 120.0), ("100us", 1e-4), ("3", 3.0)],
)
def test_parse_duration(text, seconds):
    assert hello.parse_duration(text) == pytest.approx(seconds)


def test_fault_rule_picks_by_cumulative_percentage():
    rule = hello.FaultRule.parse("503:10,429:5", hello.parse_status)
    assert rule.pick(0.0) == 503
    assert rule.pick(9.99) == 503
    assert rule.pick(10.0) == 429
    assert rule.pick(14.99) == 429
    assert rule.pick(15.0) is None
    with pytest.raises(ValueError):
        hello.FaultRule.parse("503:60,429:50", hello.parse_status)


def test_rate_limited_log_counts_what_it_suppressed(caplog):
    limiter = hello.RateLimitedLog(interval=3600)
    with caplog.at_level("ERROR", logger="hello"):
        for _ in range(5):
            limiter.log("accept failed, retrying", {"error": "Too many open files"})
        assert len(caplog.records) == 1
        assert caplog.records[0].fields["suppressed"] == 0
        limiter.interval = 0  # the interval has passed
        limiter.log("accept failed, retrying", {"error": "Too many open files"})
    assert len(caplog.records) == 2
    assert caplog.records[1].fields == {"error": "Too many open files", "suppressed": 4}


def test_event_loop_errors_are_one_line_each():
    handler = hello.LoopErrorLimiter(interval=3600)
    captured: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    capture = Capture()
    hello.log.addHandler(capture)
    try:
        context = {"message": "socket.accept() out of system resource\nsocket: <fd=6>"}
        handler(None, {**context, "exception": OSError(24, "Too many open files")})
        handler(None, context)  # the same message within the interval: suppressed
    finally:
        hello.log.removeHandler(capture)
    assert len(captured) == 1
    line = hello.TextFormatter().format(captured[0])
    assert "\n" not in line
    assert "Too many open files" in line
    assert captured[0].levelname == "ERROR"
