"""The load generator, run as a real process against the real hello server on loopback.

Timing on a loaded 2-core machine is not asserted exactly: counts that follow from the
schedule are (sent + dropped = slots), figures that depend on scheduling get a tolerance,
and the exact figures are bench/bench_loadgen.py's."""

from __future__ import annotations

import http.client
import json
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(APPS / "loadgen"))
sys.path.insert(0, str(APPS / "hello" / "tests"))

import loadgen  # noqa: E402
from hello_process import LOADGEN, clean_env, free_port, start_hello  # noqa: E402

PROGRESS = re.compile(r"^(\d+) request\(s\) complete to (\S+)$")
TOTAL = re.compile(r"^  total ")


@pytest.fixture
def hello():
    proc = start_hello()
    yield proc
    proc.kill()


def run_loadgen(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(LOADGEN), *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Loadgen:
    """loadgen as a child process, its stdout and stderr read line by line as they come."""

    def __init__(self, env: dict, *args: str, spawn=subprocess.Popen) -> None:
        self.proc = spawn(
            [sys.executable, str(LOADGEN), *args],
            env=clean_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._queues: dict[str, queue.Queue] = {"stdout": queue.Queue(), "stderr": queue.Queue()}
        self._readers = [
            threading.Thread(target=self._read, args=(name,), daemon=True)
            for name in ("stdout", "stderr")
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str) -> None:
        for line in getattr(self.proc, name):
            self.lines[name].append(line.rstrip("\n"))
            self._queues[name].put(line.rstrip("\n"))
        self._queues[name].put(None)

    def wait_for_line(self, name: str, pattern: str, timeout: float = 20) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queues[name].get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} on {name}: {self.lines}") from None
            if line is None:
                raise AssertionError(f"{name} ended without {pattern!r}: {self.lines}")
            if match := re.search(pattern, line):
                return match

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(10)
        return code, "\n".join(self.lines["stdout"]), "\n".join(self.lines["stderr"])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def spawned():
    started = []

    def spawn(env: dict, *args: str, **kwargs) -> Loadgen:
        started.append(Loadgen(env, *args, **kwargs))
        return started[-1]

    yield spawn
    for process in started:
        process.kill()


def test_constant_rate_against_the_server(hello):
    url = hello.url("/")
    result = run_loadgen(
        {"SERVER_ADDR": url, "REQUESTS_PER_SECOND": "40", "DURATION": "3", "REPORT_INTERVAL": "1"},
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sent"] + summary["dropped"] == summary["scheduled"] == 120
    assert summary["dropped"] <= 3  # only a stall in the last few slots drops one
    assert summary["completed"] == summary["sent"]
    assert summary["statuses"] == {"200": summary["sent"]}
    assert summary["versions"] == {loadgen.NO_VERSION: summary["sent"]}  # no VERSION set
    assert summary["errors"] == 0
    assert summary["elapsed_s"] == 3.0
    assert summary["achieved_ratio"] == pytest.approx(1.0, abs=0.03)
    # Scheduling noise, not a backlog: a scheduler that fell behind sends nearly every
    # request late (see the falling-behind test). On a 2-core machine at load 10 a quarter
    # of the sends were late (32 of 120), so the bound is half.
    assert summary["late"] <= summary["sent"] // 2
    for key in ("latency_ms", "service_latency_ms"):
        assert set(summary[key]) == {"p50", "p90", "p99", "p99.9", "max"}
        assert 0 < summary[key]["p50"] <= summary[key]["p99"] <= summary[key]["max"]

    # With --json the progress reports go to stderr: the tutorial line, then the statistics.
    progress = [m for m in map(PROGRESS.match, result.stderr.splitlines()) if m]
    assert len(progress) >= 2
    assert all(m.group(2) == url for m in progress)
    assert "sent=" in result.stderr
    assert "p99.9=" in result.stderr
    hello.wait_for_line(lambda line: "loadgen/1.0" in line)  # its User-Agent reached the log


def test_text_report_and_fractional_rate(hello):
    result = run_loadgen(
        {"SERVER_ADDR": hello.url("/"), "REQUESTS_PER_SECOND": "2.5", "DURATION": "2"}
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Sending 2.5 request(s) per second to ")
    final = lines.index(next(line for line in lines if TOTAL.match(line)))
    figures = dict(re.findall(r"(\w+)=(\S+)", lines[final]))
    sent, late, dropped = int(figures["sent"]), int(figures["late"]), int(figures["dropped"])
    assert sent + dropped == 5  # slots at 0, 0.4, ..., 1.6 s
    assert dropped <= 1
    assert int(figures["completed"]) == sent
    assert PROGRESS.match(lines[final - 1]).group(1) == str(sent)
    # A busy machine can delay a send past 10 ms: a tolerance, not zero (exact: bench/).
    assert late <= 2
    assert figures["codes"] == f"200:{sent}"
    assert lines[final + 1].startswith("  latency ms: p50=")
    assert lines[final + 3] == f"  versions: (none)={sent} (100.0%)"


def test_server_down_then_started_mid_run(spawned):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    gen = spawned(
        {
            "SERVER_ADDR": url,
            "REQUESTS_PER_SECOND": "20",
            "DURATION": "4",
            "TIMEOUT": "1",
            "REPORT_INTERVAL": "0.2",
        },
        "--json",
    )
    server = None
    try:
        gen.wait_for_line("stderr", r"connection_errors=[1-9]")  # nothing is listening
        server = start_hello(port=port)
        code, out, err = gen.finish()
    finally:
        if server is not None:
            server.kill()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["sent"] + summary["dropped"] == 80  # the schedule held while requests failed
    assert summary["dropped"] <= 3
    assert summary["connection_errors"] > 0
    assert summary["statuses"].get("200", 0) > 0  # and it recovered
    assert summary["connection_errors"] + summary["statuses"]["200"] == summary["sent"]


def test_slow_server_timeouts_are_counted_and_schedule_kept(hello):
    result = run_loadgen(
        {
            "SERVER_ADDR": hello.url("/?delay=1s"),
            "REQUESTS_PER_SECOND": "10",
            "DURATION": "2",
            "TIMEOUT": "200ms",
            "CONCURRENCY": "8",
        },
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sent"] + summary["dropped"] == 20
    assert summary["dropped"] <= 2
    assert summary["timeouts"] == summary["sent"]
    assert summary["completed"] == 0
    assert summary["latency_ms"] is None


def test_falling_behind_sends_late_until_the_end_then_drops(hello):
    # One request in flight at a time, each 100 ms: at most ~10 of the 20 slots get out.
    result = run_loadgen(
        {
            "SERVER_ADDR": hello.url("/?delay=100ms"),
            "REQUESTS_PER_SECOND": "20",
            "DURATION": "1",
            "CONCURRENCY": "1",
        },
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sent"] + summary["dropped"] == summary["scheduled"] == 20
    assert summary["sent"] <= 11
    assert summary["dropped"] >= 9  # not sent by DURATION: dropped, and the run ended on time
    assert summary["late"] >= summary["sent"] - 2  # all but the first slot or so went out late
    assert summary["achieved_ratio"] < 0.6
    assert summary["workers"] == 1
    # Measured from the intended send time, the queueing shows; from the actual send it does not.
    assert summary["latency_ms"]["max"] > 2 * summary["service_latency_ms"]["max"]


def test_an_impossible_rate_ends_at_duration_with_the_rest_dropped(hello):
    result = run_loadgen(
        {
            "SERVER_ADDR": hello.url("/"),
            "REQUESTS_PER_SECOND": "20000",
            "DURATION": "1",
            "CONCURRENCY": "4",
            "TIMEOUT": "1",
        },
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sent"] + summary["dropped"] == 20000
    assert summary["dropped"] > 10000  # one Python client does a few thousand a second
    assert summary["elapsed_s"] == 1.0
    assert summary["abandoned"] == 0
    # Ends by DURATION + TIMEOUT + the finishing grace (with a second for a busy machine).
    assert summary["run_s"] <= 1 + 1 + loadgen.FINISH_GRACE + 1


def test_a_large_concurrency_starts_only_the_workers_needed(hello):
    result = run_loadgen(
        {
            "SERVER_ADDR": hello.url("/"),
            "REQUESTS_PER_SECOND": "10",
            "DURATION": "1",
            "CONCURRENCY": "1000",
        },
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["concurrency"] == 1000
    assert 1 <= summary["workers"] <= 10  # ~1 ms answers at 10/s need two
    assert summary["completed"] + summary["dropped"] == 10


class TrickleServer:
    """Answers every request with a status line and then one header byte every 50 ms,
    for ever: no single read waits long enough to time out, so only a bound on the
    request's total time ends it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Trickle: ")
                while not self.stop.wait(0.05):  # the pace of the trickle, not a sync
                    conn.sendall(b"a")
            except OSError:  # loadgen cut the request
                return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def trickle():
    server = TrickleServer()
    yield server
    server.close()


def test_a_trickling_server_cannot_keep_the_run_past_duration_plus_timeout(trickle):
    started = time.monotonic()
    result = run_loadgen(
        {
            "SERVER_ADDR": f"http://127.0.0.1:{trickle.port}/",
            "REQUESTS_PER_SECOND": "5",
            "DURATION": "2",
            "TIMEOUT": "0.5",
        },
        "--json",
        timeout=30,  # the old loadgen never finished: the trickle is endless
    )
    wall = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sent"] > 0
    # Every request was cut at its total TIMEOUT, mid-run too, not left to trickle.
    assert summary["timeouts"] + summary["abandoned"] == summary["sent"]
    assert summary["timeouts"] >= summary["sent"] - 1
    assert summary["completed"] == 0
    assert summary["elapsed_s"] == 2.0
    assert summary["run_s"] <= 2 + 0.5 + loadgen.FINISH_GRACE + 1
    assert wall < 2 + 0.5 + loadgen.FINISH_GRACE + 10  # the process itself ended too


def test_max_error_rate_fails_the_run(hello):
    env = {
        "SERVER_ADDR": hello.url("/?status=503:50"),
        "REQUESTS_PER_SECOND": "50",
        "DURATION": "1",
    }
    failed = run_loadgen(env, "--json", "--max-error-rate", "0.05")
    assert failed.returncode == 1
    summary = json.loads(failed.stdout)
    assert summary["statuses"].get("503", 0) > 0
    assert summary["errors"] == summary["statuses"]["503"]
    assert "exceeds --max-error-rate" in failed.stderr
    passed = run_loadgen({**env, "MAX_ERROR_RATE": "100%"}, "--json")
    assert passed.returncode == 0


def test_a_reader_that_goes_away_ends_the_run_without_a_traceback(hello):
    proc = subprocess.Popen(
        [sys.executable, str(LOADGEN)],
        env=clean_env(
            {"SERVER_ADDR": hello.url("/"), "REQUESTS_PER_SECOND": "20", "REPORT_INTERVAL": "0.2"}
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith("Sending 20 request(s)")
        proc.stdout.close()  # like `| head -1`: the next report meets a closed pipe
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert "Traceback" not in err


# --- signals ----------------------------------------------------------------------


def assert_summary_after_signal(code: int, out: str, err: str, sent_at_most: int | None = None):
    assert code == 0, err
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    total = [line for line in out.splitlines() if TOTAL.match(line)]
    assert len(total) == 1, out
    if sent_at_most is not None:
        sent = re.search(r"sent=(\d+)", total[0])
        assert sent is not None
        assert int(sent.group(1)) <= sent_at_most


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_once_started_stops_with_the_final_report(hello, spawned, signum):
    gen = spawned({"SERVER_ADDR": hello.url("/"), "REQUESTS_PER_SECOND": "20"})
    gen.wait_for_line("stdout", r"^Sending 20 request")
    gen.signal(signum)
    assert_summary_after_signal(*gen.finish())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_after_the_first_report_stops_with_the_final_report(hello, spawned, signum):
    gen = spawned(
        {"SERVER_ADDR": hello.url("/"), "REQUESTS_PER_SECOND": "20", "REPORT_INTERVAL": "0.2"}
    )
    gen.wait_for_line("stdout", r"^  interval ")
    gen.signal(signum)
    code, out, err = gen.finish()
    assert_summary_after_signal(code, out, err)
    assert re.search(r"^  total .* sent=[1-9]", out, re.MULTILINE)


def spawn_with_stop_signals_blocked(*args, **kwargs) -> subprocess.Popen:
    """Popen from a thread that blocks SIGTERM and SIGINT: the child inherits the mask,
    as from a supervisor that must not lose a signal sent before the child's handlers
    exist. A signal sent at once then waits until loadgen unblocks it."""
    spawned: list[subprocess.Popen] = []

    def spawn() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        spawned.append(subprocess.Popen(*args, **kwargs))

    thread = threading.Thread(target=spawn)
    thread.start()
    thread.join()
    return spawned[0]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_immediately_after_spawn_still_gives_a_summary(hello, spawned, signum):
    env = {"SERVER_ADDR": hello.url("/"), "REQUESTS_PER_SECOND": "20"}
    gen = spawned(env, spawn=spawn_with_stop_signals_blocked)
    gen.signal(signum)  # before the interpreter has even started loadgen
    code, out, err = gen.finish()
    assert_summary_after_signal(code, out, err, sent_at_most=0)


def test_nothing_finished_fails_max_error_rate(hello, spawned):
    env = {"SERVER_ADDR": hello.url("/"), "REQUESTS_PER_SECOND": "20", "MAX_ERROR_RATE": "1"}
    gen = spawned(env, "--json", spawn=spawn_with_stop_signals_blocked)
    gen.signal(signal.SIGTERM)
    code, out, err = gen.finish()
    summary = json.loads(out)
    assert summary["sent"] == summary["scheduled"] == summary["dropped"] == 0
    assert code == 1, err  # no evidence is not a pass
    assert "no finished requests to judge --max-error-rate" in err


def test_status_port_serves_health_and_running_totals(hello, spawned):
    gen = spawned(
        {
            "SERVER_ADDR": hello.url("/"),
            "REQUESTS_PER_SECOND": "20",
            "REPORT_INTERVAL": "0.2",
            "STATUS_PORT": "0",
            "STATUS_ADDRESS": "127.0.0.1",
        }
    )
    port = int(gen.wait_for_line("stdout", r"status on port (\d+)").group(1))
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{base}/healthz", timeout=5) as response:
        assert (response.status, response.read()) == (200, b"ok\n")
    gen.wait_for_line("stdout", r"^[1-9]\d* request\(s\) complete")  # a report with responses
    with opener.open(f"{base}/stats", timeout=5) as response:
        stats = json.loads(response.read())
    assert stats["completed"] > 0
    assert stats["statuses"]["200"] > 0
    assert {"sent", "late", "timeouts", "connection_errors", "in_flight", "workers"} <= set(stats)
    assert stats["dropped"] == 0  # nothing is dropped while the run goes on
    gen.signal(signal.SIGTERM)
    assert_summary_after_signal(*gen.finish())


# --- the split by X-Version ---------------------------------------------------------


@pytest.fixture
def versions():
    servers = [start_hello({"VERSION": "v1"}), start_hello({"VERSION": "v2"})]
    yield servers
    for server in servers:
        server.kill()


def test_the_split_of_two_versions_is_reported(versions):
    v1, v2 = versions
    result = run_loadgen(
        {
            "SERVER_ADDR": f"{v1.url('/')},{v2.url('/')}",
            "REQUESTS_PER_SECOND": "40",
            "DURATION": "1",
            "REPORT_INTERVAL": "0.5",
            "EXPECT_SPLIT": "v1:50,v2:50",
        }
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    interval = next(i for i, line in enumerate(lines) if line.startswith("  interval "))
    assert lines[interval + 3].startswith("  versions: v1=")
    assert lines[interval + 4].startswith("  split vs v1:50,v2:50: ")
    final = next(i for i, line in enumerate(lines) if TOTAL.match(line))
    counts = dict(re.findall(r"(v[12])=(\d+)", lines[final + 3]))
    assert abs(int(counts["v1"]) - int(counts["v2"])) <= 1  # targets in turn, slot by slot
    assert lines[final + 4].endswith(": ok")


def test_a_split_past_the_tolerance_fails_the_run(versions):
    v1, v2 = versions
    result = run_loadgen(
        {
            "SERVER_ADDR": f"{v1.url('/')},{v2.url('/')}",
            "REQUESTS_PER_SECOND": "40",
            "DURATION": "1",
        },
        "--json",
        "--expect-split",
        "v1:90,v2:10",
    )
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    n1, n2 = summary["versions"]["v1"], summary["versions"]["v2"]
    assert abs(n1 - n2) <= 1
    assert n1 + n2 == summary["completed"] > 0
    split = summary["split"]
    assert split["expected"] == {"v1": 90.0, "v2": 10.0}
    assert split["deviation_pp"]["v1"] == pytest.approx(-40, abs=3)
    assert not split["ok"]
    assert "strays from --expect-split v1:90,v2:10" in result.stderr


def test_a_weighted_split_by_repeating_a_target(versions):
    # Nine v1 addresses and one v2, taken in turn: the 90/10 a VirtualService would route.
    v1, v2 = versions
    result = run_loadgen(
        {
            "SERVER_ADDR": ",".join([v1.url("/")] * 9 + [v2.url("/")]),
            "REQUESTS_PER_SECOND": "100",
            "DURATION": "1",
            "EXPECT_SPLIT": "v1:90,v2:10",
            "SPLIT_TOLERANCE": "2",
        },
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["split"]["ok"]
    assert abs(summary["split"]["deviation_pp"]["v2"]) <= 2
    assert summary["versions"]["v2"] == pytest.approx(summary["completed"] / 10, abs=1)


class WeightedProxy:
    """One address in front of several backends, each request sent to one picked at
    random by weight, as a sidecar routes a VirtualService's weighted destinations.
    Seeded, so that a run's picks are the same every time."""

    def __init__(self, backends: list[tuple[str, int, int]], seed: int = 2024) -> None:
        self.backends = backends  # (host, port, weight)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with proxy.lock:
                    host, port, _ = proxy.rng.choices(
                        proxy.backends, weights=[w for _, _, w in proxy.backends]
                    )[0]
                upstream = http.client.HTTPConnection(host, port, timeout=10)
                try:
                    upstream.request("GET", self.path)
                    answer = upstream.getresponse()
                    body = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for name in ("Content-Type", "X-Version"):
                    value = answer.getheader(name)
                    if value is not None:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_weighted_random_split_behind_one_address(versions):
    # As in a cluster: one address, routed 90/10 at random; loadgen counts what answered.
    v1, v2 = versions
    proxy = WeightedProxy([(v1.host, v1.port, 90), (v2.host, v2.port, 10)])
    try:
        env = {
            "SERVER_ADDR": f"http://127.0.0.1:{proxy.port}/",
            "REQUESTS_PER_SECOND": "100",
            "DURATION": "2",
            "EXPECT_SPLIT": "v1:90,v2:10",
        }
        right = run_loadgen(env, "--json")
        wrong = run_loadgen({**env, "EXPECT_SPLIT": "v1:50,v2:50"}, "--json")
    finally:
        proxy.close()
    assert right.returncode == 0, right.stderr
    summary = json.loads(right.stdout)
    assert set(summary["versions"]) == {"v1", "v2"}
    assert summary["split"]["ok"]
    # ~200 responses: chance alone moves a 10% share by a few points, which is allowed.
    assert summary["split"]["allowed_pp"]["v2"] > loadgen.DEFAULT_SPLIT_TOLERANCE
    assert wrong.returncode == 1
    assert not json.loads(wrong.stdout)["split"]["ok"]


# --- bad settings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "args", "mentions"),
    [
        ({"REQUESTS_PER_SECOND": "5"}, [], "SERVER_ADDR is required"),
        ({"SERVER_ADDR": "http://127.0.0.1:9"}, [], "REQUESTS_PER_SECOND is required"),
        ({"SERVER_ADDR": "localhost:8080", "REQUESTS_PER_SECOND": "5"}, [], "SERVER_ADDR="),
        ({"SERVER_ADDR": "http://*.x", "REQUESTS_PER_SECOND": "5", "DURATION": "1"}, [], "host label '*'"),
        ({"SERVER_ADDR": "http://.x", "REQUESTS_PER_SECOND": "5", "DURATION": "1"}, [], "empty label"),
        ({"SERVER_ADDR": "http://a b", "REQUESTS_PER_SECOND": "5", "DURATION": "1"}, [], "space"),
        ({"SERVER_ADDR": "http://" + "a" * 64 + ".x", "REQUESTS_PER_SECOND": "5"}, [], "at most 63"),
        ({"SERVER_ADDR": "http://x:99999", "REQUESTS_PER_SECOND": "5"}, [], "invalid port"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "0"}, [], "REQUESTS_PER"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "1e-10"}, [], "from 0.001"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "fast"}, [], "REQUESTS_PER"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "nan"}, [], "REQUESTS_PER"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "DURATION": "-1"}, [], "DURATION"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "DURATION": "0"}, [], "'forever'"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "CONCURRENCY": "0"}, [], "CONCURRENCY"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "CONCURRENCY": "10000"}, [], "1 to 1000"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "TIMEOUT": "0"}, [], "TIMEOUT"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "TIMEOUT": "1e10"}, [], "TIMEOUT"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "REPORT_INTERVAL": "x"}, [], "REPORT_INTERVAL"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "REPORT_INTERVAL": "1e10"}, [], "REPORT_INTERVAL"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "JITTER": "2"}, [], "JITTER"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "STATUS_PORT": "99999"}, [], "STATUS_PORT"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "EXPECT_SPLIT": "v1:90"}, [], "EXPECT_SPLIT"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5"}, ["--max-error-rate", "2"], "MAX_ERROR_RATE"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5"}, ["--timeout", "soon"], "TIMEOUT"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5"}, ["--split-tolerance", "x"], "SPLIT_TOLERANCE"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5"}, ["--bogus"], "--bogus"),
    ],
)  # fmt: skip
def test_bad_settings_exit_2_with_one_line(env, args, mentions):
    result = run_loadgen(env, *args, timeout=20)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("loadgen: error: ")
    assert mentions in lines[0]


# --- the generator in process --------------------------------------------------------
# The runs above are processes, which run loadgen's file as `__main__`: they show what a
# user sees, and no mutant of `nox -s mutate` can show there. These drive the same
# LoadGenerator, its worker threads, its watchdog and its requests client from the test's
# own process, against the real server or the trickle above.


class ClosedClient(loadgen.Client):
    """loadgen's own client, remembering whether its worker closed it."""

    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


def run_in_process(url: str, **fields) -> tuple[loadgen.LoadGenerator, list[ClosedClient], int]:
    """A LoadGenerator with a DURATION, run to its end: (it, the clients it made, abandoned)."""
    options = loadgen.Options(server_addrs=(url,), **fields)
    clients: list[ClosedClient] = []
    changed = threading.Condition()

    def make_client() -> ClosedClient:
        clients.append(ClosedClient(options.server_addrs, options.timeout))
        return clients[-1]

    def notify() -> None:
        with changed:
            changed.notify_all()

    generator = loadgen.LoadGenerator(options, notify=notify, client_factory=make_client)
    generator.start()
    with changed:  # each worker exits once the slots run out
        assert changed.wait_for(lambda: generator.workers_alive == 0, timeout=60)
    return generator, clients, generator.finish()


def test_a_run_in_process_sends_through_worker_threads_and_balances_its_counts(hello):
    generator, clients, abandoned = run_in_process(
        hello.url("/"), rate=100.0, duration=0.3, concurrency=4, timeout=10.0
    )
    total = generator.total
    assert generator.total_slots == 30
    assert total.sent >= 1 and total.sent + generator.dropped(generator.clock()) == 30
    assert total.statuses == {200: total.sent} and total.errors == 0
    # Latency counts from the due time, service latency from the send: never less, and
    # both well within a run that lasted under a minute.
    latency, service = total.latency.summary_ms(), total.service_latency.summary_ms()
    assert 0 < service["max"] <= latency["max"] < 60_000
    assert (abandoned, generator.in_flight(), generator._idle) == (0, 0, 0)
    assert 1 <= generator.workers_started == len(clients) <= 4
    assert all(client.closed for client in clients)


def test_the_watchdog_cuts_a_request_past_its_timeout_and_the_worker_starts_afresh(trickle):
    # No single read waits for TIMEOUT (a byte every 50 ms): only the watchdog ends a request.
    generator, clients, abandoned = run_in_process(
        f"http://127.0.0.1:{trickle.port}/", rate=1.0, duration=2.0, concurrency=1, timeout=1.0
    )
    total = generator.total
    assert (total.sent, total.timeouts, total.completed, abandoned) == (2, 2, 0, 0)
    # A cut connection is not reused: the worker takes a fresh client after each cut.
    assert len(clients) == 3 and all(client.closed for client in clients)
    assert trickle.connections == 2
