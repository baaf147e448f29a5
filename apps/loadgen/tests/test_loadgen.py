"""The load generator, run as a real process against the real hello server on loopback."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(APPS / "loadgen"))
sys.path.insert(0, str(APPS / "hello" / "tests"))

import loadgen  # noqa: E402
from hello_process import clean_env, free_port, start_hello  # noqa: E402

LOADGEN = APPS / "loadgen" / "loadgen.py"
PROGRESS = re.compile(r"^(\d+) request\(s\) complete to (\S+)$")


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


def start_loadgen(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(LOADGEN), *args],
        env=clean_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_constant_rate_against_the_server(hello):
    url = hello.url("/")
    result = run_loadgen(
        {"SERVER_ADDR": url, "REQUESTS_PER_SECOND": "40", "DURATION": "3", "REPORT_INTERVAL": "1"},
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert abs(summary["sent"] - 120) <= 2  # 40/s for 3 s, within 1% plus one edge slot
    assert summary["completed"] == summary["sent"]
    assert summary["statuses"] == {"200": summary["sent"]}
    assert summary["errors"] == 0
    assert summary["achieved_ratio"] == pytest.approx(1.0, abs=0.02)
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
    final = lines.index(next(line for line in lines if line.startswith("  total ")))
    assert PROGRESS.match(lines[final - 1]).group(1) == "5"
    assert "sent=5 completed=5 late=0" in lines[final]
    assert "codes=200:5" in lines[final]
    assert lines[final + 1].startswith("  latency ms: p50=")


def test_server_down_then_started_mid_run():
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    gen = start_loadgen(
        {"SERVER_ADDR": url, "REQUESTS_PER_SECOND": "20", "DURATION": "4", "TIMEOUT": "1"},
        "--json",
    )
    server = None
    try:
        time.sleep(1.5)  # part of the run with nothing listening
        server = start_hello(port=port)
        out, err = gen.communicate(timeout=30)
    finally:
        gen.kill()
        if server is not None:
            server.kill()
    assert gen.returncode == 0, err
    summary = json.loads(out)
    assert abs(summary["sent"] - 80) <= 2  # the schedule held while requests failed
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
    assert abs(summary["sent"] - 20) <= 1
    assert summary["timeouts"] == summary["sent"]
    assert summary["completed"] == 0
    assert summary["latency_ms"] is None


def test_falling_behind_is_reported_not_hidden(hello):
    # One request in flight at a time, each 100 ms: at most ~10/s of the 20/s asked.
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
    assert summary["sent"] == 20  # every slot is still sent, late
    assert summary["late"] >= 15
    assert summary["achieved_ratio"] < 0.75
    # Measured from the intended send time, the queueing shows; from the actual send it does not.
    assert summary["latency_ms"]["max"] > 5 * summary["service_latency_ms"]["max"]


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


def test_sigterm_stops_and_prints_the_final_report(hello):
    gen = start_loadgen(
        {"SERVER_ADDR": hello.url("/"), "REQUESTS_PER_SECOND": "20", "REPORT_INTERVAL": "0.5"}
    )
    try:
        first_report = gen.stdout.readline() + gen.stdout.readline()
        assert PROGRESS.match(first_report.splitlines()[-1])
        gen.send_signal(signal.SIGTERM)
        out, err = gen.communicate(timeout=15)
    finally:
        gen.kill()
    assert gen.returncode == 0, err
    assert "  total " in out
    assert "Traceback" not in err


def test_status_port_serves_health_and_running_totals(hello):
    gen = start_loadgen(
        {
            "SERVER_ADDR": hello.url("/"),
            "REQUESTS_PER_SECOND": "20",
            "STATUS_PORT": "0",
            "STATUS_ADDRESS": "127.0.0.1",
        }
    )
    try:
        banner = gen.stdout.readline()
        port = int(re.search(r"status on port (\d+)", banner).group(1))
        base = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{base}/healthz", timeout=5) as response:
            assert (response.status, response.read()) == (200, b"ok\n")
        deadline = time.monotonic() + 10
        stats = {}
        while time.monotonic() < deadline and not stats.get("completed"):
            with opener.open(f"{base}/stats", timeout=5) as response:
                stats = json.loads(response.read())
            time.sleep(0.1)
        assert stats["completed"] > 0
        assert stats["statuses"]["200"] > 0
        assert {"sent", "late", "timeouts", "connection_errors", "in_flight"} <= set(stats)
        gen.send_signal(signal.SIGTERM)
        assert gen.wait(15) == 0
    finally:
        gen.kill()
        gen.communicate()


@pytest.mark.parametrize(
    ("env", "args", "mentions"),
    [
        ({"REQUESTS_PER_SECOND": "5"}, [], "SERVER_ADDR is required"),
        ({"SERVER_ADDR": "http://127.0.0.1:9"}, [], "REQUESTS_PER_SECOND is required"),
        ({"SERVER_ADDR": "localhost:8080", "REQUESTS_PER_SECOND": "5"}, [], "SERVER_ADDR="),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "0"}, [], "REQUESTS_PER"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "fast"}, [], "REQUESTS_PER"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "nan"}, [], "REQUESTS_PER"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "DURATION": "-1"}, [], "DURATION"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "CONCURRENCY": "0"}, [], "CONCURRENCY"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "TIMEOUT": "0"}, [], "TIMEOUT"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "REPORT_INTERVAL": "x"}, [], "REPORT_INTERVAL"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "JITTER": "2"}, [], "JITTER"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5", "STATUS_PORT": "99999"}, [], "STATUS_PORT"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5"}, ["--max-error-rate", "2"], "MAX_ERROR_RATE"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5"}, ["--timeout", "soon"], "TIMEOUT"),
        ({"SERVER_ADDR": "http://127.0.0.1:9", "REQUESTS_PER_SECOND": "5"}, ["--bogus"], "--bogus"),
    ],
)  # fmt: skip
def test_bad_settings_exit_2_with_one_line(env, args, mentions):
    result = run_loadgen(env, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("loadgen: error: ")
    assert mentions in lines[0]


def test_flags_override_env():
    options = loadgen.parse_options(
        ["--rate", "7", "--timeout", "500ms", "--duration", "1m", "--jitter", "0.5"],
        {"SERVER_ADDR": "http://hello:8080", "REQUESTS_PER_SECOND": "3", "TIMEOUT": "9"},
    )
    assert options.rate == 7
    assert options.timeout == 0.5
    assert options.duration == 60
    assert options.jitter == 0.5
    assert options.concurrency == loadgen.default_concurrency(7)


# --- pure parts ----------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_schedule_is_start_plus_i_over_rate_without_drift():
    clock = FakeClock()
    options = loadgen.Options(server_addr="http://x", rate=3, duration=100, concurrency=1)
    generator = loadgen.LoadGenerator(options, clock=clock)
    generator.started, generator.end = clock.now, clock.now + 100
    dues = []
    while (due := generator._claim()) is not None:
        dues.append(due)
    assert len(dues) == 300
    assert dues[-1] - clock.now == pytest.approx(299 / 3, abs=1e-9)  # no accumulated error
    assert generator.scheduled(clock.now + 50) == 151
    assert generator.scheduled(clock.now + 500) == 300


def test_jitter_stays_inside_each_slot():
    options = loadgen.Options(server_addr="http://x", rate=10, duration=10, jitter=1.0)
    generator = loadgen.LoadGenerator(options, clock=FakeClock())
    generator.started, generator.end = 0.0, 10.0
    for slot in range(100):
        due = generator._claim()
        assert slot / 10 <= due < (slot + 1) / 10


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


def test_stats_count_errors_and_rates():
    stats = loadgen.Stats(0.0)
    stats.sent = 10
    stats.statuses.update({200: 6, 503: 1})
    stats.timeouts, stats.connection_errors = 2, 1
    assert stats.completed == 7
    assert stats.errors == 4
    assert stats.error_rate() == 0.4
    figures = stats.to_dict(elapsed=2.0)
    assert figures["actual_rate"] == 5.0
    assert figures["statuses"] == {"200": 6, "503": 1}
