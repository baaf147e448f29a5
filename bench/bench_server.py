"""Throughput of the hello server with keep-alive, and what its access log costs.

Part 1, the log: requests/s at 16 connections for apps/hello with its access log on and
off (`ACCESS_LOG=off`), beside granian (from the `bench` extra) serving an equivalent
RSGI hello app with and without its access log, all measured in the same run. Goal:
hello with its log >= granian with its log.

Part 2, the serving model: apps/hello against the standard library's ThreadingHTTPServer
(HTTP/1.1, keep-alive, the same body and one log line per request) at 1, 4 and 16
connections, the choice docs/apps.md justifies.

Every server is one process (granian: one worker, default runtime) writing its log to a
file. The client is `wrk -t1` when installed (`apt-get install wrk`), else Python
threads with http.client, which are then the bottleneck and say so. Loopback only.

    python bench/bench_server.py            # about 50 s
    python bench/bench_server.py --quick    # a few seconds, for CI smoke runs
    BENCH_SECONDS=10 python bench/bench_server.py
Target on the 2-core reference machine: >= 5,000 requests/s with keep-alive.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "apps" / "hello" / "server.py"
TARGET_RPS = 5000

# The baseline: what the stdlib offers, set up as fairly as it allows (HTTP/1.1 keep-alive,
# Content-Length, one access log line per request to stdout).
THREADING_SERVER = r"""
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without it, headers and body leave in two writes and Nagle's algorithm meets delayed
    # ACKs: about 40 ms per request, 20-300 req/s. With it the baseline is at its best.
    disable_nagle_algorithm = True
    def do_GET(self):
        started = time.perf_counter()
        body = b"Hello World!\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        sys.stdout.write("request method=GET path=%s status=200 duration_ms=%.3f\n"
                         % (self.path, (time.perf_counter() - started) * 1000))
        sys.stdout.flush()
    def log_message(self, *args):
        pass

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

# The same answer as apps/hello's GET / (body, content type, nosniff), as an RSGI app:
# granian's own interface, its fastest.
GRANIAN_APP = """
HEADERS = [("content-type", "text/plain; charset=utf-8"), ("x-content-type-options", "nosniff")]

async def app(scope, proto):
    proto.response_bytes(200, HEADERS, b"Hello World!\\n")
"""


@dataclass(frozen=True)
class Server:
    name: str
    command: list[str]
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def granian_command() -> list[str] | None:
    """granian from this interpreter's environment (the `bench` extra), if installed."""
    candidate = Path(sys.executable).with_name("granian")
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("granian")
    return [found] if found else None


def servers(port: int, app_dir: str, granian: list[str] | None) -> dict[str, Server]:
    hello = [sys.executable, str(SERVER)]
    # DRAIN_DELAY=0: the benchmark stops each server with SIGTERM and need not wait.
    hello_env = {"PORT": str(port), "LISTEN_ADDRESS": "127.0.0.1", "DRAIN_DELAY": "0"}
    chosen = {
        "hello, log on": Server("hello, log on", hello, hello_env),
        "hello, log off": Server("hello, log off", hello, {**hello_env, "ACCESS_LOG": "off"}),
        "stdlib ThreadingHTTPServer": Server(
            "stdlib ThreadingHTTPServer", [sys.executable, "-c", THREADING_SERVER, str(port)], {}
        ),
    }
    if granian:
        base = [
            *granian,
            "--interface",
            "rsgi",
            "--workers",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--working-dir",
            app_dir,
        ]
        for label, flag in (
            ("granian, log on", "--access-log"),
            ("granian, log off", "--no-access-log"),
        ):
            chosen[label] = Server(label, [*base, flag, "granian_hello:app"], {})
    return chosen


def wait_until_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start listening")


def _millis(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match, text
    number, unit = match.groups()
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(url: str, connections: int, seconds: float) -> tuple[float, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    assert rps and p99, out
    return float(rps.group(1)), _millis(p99.group(1))


def run_python_client(url: str, connections: int, seconds: float) -> tuple[float, float]:
    host, port = url.split("//")[1].rstrip("/").split(":")
    latencies: list[list[float]] = [[] for _ in range(connections)]
    stop_at = time.perf_counter() + seconds

    def client(samples: list[float]) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        while (now := time.perf_counter()) < stop_at:
            conn.request("GET", "/")
            conn.getresponse().read()
            samples.append(time.perf_counter() - now)
        conn.close()

    threads = [threading.Thread(target=client, args=(s,)) for s in latencies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = sorted(x for samples in latencies for x in samples)
    p99 = merged[max(0, int(len(merged) * 0.99) - 1)] * 1000 if merged else float("nan")
    return len(merged) / seconds, p99


def measure(server: Server, port: int, connection_counts: tuple[int, ...], seconds: float, client):
    """[(connections, req/s, p99 ms)] for one server process; its log goes to a file."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            server.command,
            env={**os.environ, **server.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_listening(port, proc)
            url = f"http://127.0.0.1:{port}/"
            client(url, 4, min(1.0, seconds))  # warm-up
            results = []
            for connections in connection_counts:
                rps, p99 = client(url, connections, seconds)
                results.append((connections, rps, p99))
            log.seek(0, os.SEEK_END)
            logged = log.tell()
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    if server.name.endswith("log on") and logged == 0:
        raise SystemExit(f"{server.name}: wrote no access log; the comparison would be unfair")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s runs, 16 connections only")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else float(os.environ.get("BENCH_SECONDS", "4"))
    wrk = shutil.which("wrk")
    client = run_wrk if wrk else run_python_client
    granian = granian_command()
    print(f"hello server throughput, keep-alive, {seconds:g} s per run, {os.cpu_count()} CPUs")
    print(
        "client: wrk -t1"
        if wrk
        else "client: Python http.client threads (wrk not installed: the client is the limit)"
    )
    with tempfile.TemporaryDirectory() as app_dir:
        Path(app_dir, "granian_hello.py").write_text(GRANIAN_APP)
        port = free_port()
        chosen = servers(port, app_dir, granian)

        print("\n1. access log cost, 16 connections")
        print(f"{'server':<30} {'req/s':>10} {'p99 ms':>8}")
        figures: dict[str, float] = {}
        for name in ("hello, log on", "hello, log off", "granian, log on", "granian, log off"):
            if name not in chosen:
                print(f"{name:<30} {'(granian not installed: pip install -e .[bench])':>10}")
                continue
            port = free_port()
            server = servers(port, app_dir, granian)[name]
            [(_, rps, p99)] = measure(server, port, (16,), seconds, client)
            figures[name] = rps
            print(f"{name:<30} {rps:>10,.0f} {p99:>8.2f}", flush=True)
        if "granian, log on" in figures:
            ratio = figures["hello, log on"] / figures["granian, log on"]
            verdict = "met" if ratio >= 1 else "NOT met"
            print(f"goal hello (log on) >= granian (log on): {verdict} ({ratio:.2f}x)")

        print("\n2. serving model")
        print(f"{'server':<30} {'conns':>5} {'req/s':>10} {'p99 ms':>8}")
        counts = (16,) if args.quick else (1, 4, 16)
        best = 0.0
        for name in ("hello, log on", "stdlib ThreadingHTTPServer"):
            port = free_port()
            server = servers(port, app_dir, granian)[name]
            for connections, rps, p99 in measure(server, port, counts, seconds, client):
                if name.startswith("hello"):
                    best = max(best, rps)
                print(f"{name:<30} {connections:>5} {rps:>10,.0f} {p99:>8.2f}", flush=True)
    verdict = "met" if best >= TARGET_RPS else "NOT met"
    print(f"target >= {TARGET_RPS:,} req/s: {verdict} (best {best:,.0f} req/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
