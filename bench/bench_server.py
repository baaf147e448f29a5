"""Throughput of the hello server with keep-alive: requests/s and p99 at 1, 4 and 16 connections.

Compares the asyncio server in apps/hello/server.py with the standard library's
ThreadingHTTPServer (HTTP/1.1, keep-alive, the same body and one log line per request),
the choice the issue asked to justify. The client is `wrk` when it is installed
(`apt-get install wrk`), else a Python client with one thread per connection, which is
itself the bottleneck well below the server's limit and says so.

    python bench/bench_server.py            # 5 s per run
    BENCH_SECONDS=10 python bench/bench_server.py
Target on the 2-core reference machine: >= 5,000 requests/s with keep-alive.
"""

from __future__ import annotations

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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "apps" / "hello" / "server.py"
CONNECTIONS = (1, 4, 16)
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start listening")


def start(kind: str, port: int, log) -> subprocess.Popen:
    if kind == "asyncio (apps/hello)":
        command = [sys.executable, str(SERVER)]
    else:
        command = [sys.executable, "-c", THREADING_SERVER, str(port)]
    env = {**os.environ, "PORT": str(port), "LISTEN_ADDRESS": "127.0.0.1"}
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_until_listening(port, proc)
    return proc


def _millis(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(url: str, connections: int, seconds: float = SECONDS) -> tuple[float, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = _millis(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))
    return rps, p99


def run_python_client(url: str, connections: int, seconds: float = SECONDS) -> tuple[float, float]:
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


def main() -> int:
    wrk = shutil.which("wrk")
    client = run_wrk if wrk else run_python_client
    print(f"hello server throughput, keep-alive, {SECONDS:g} s per run, {os.cpu_count()} CPUs")
    print(
        "client: wrk -t1"
        if wrk
        else "client: Python http.client threads (wrk not installed: the client is the limit)"
    )
    print(f"{'server':<30} {'conns':>5} {'req/s':>10} {'p99 ms':>8}")
    best = 0.0
    for kind in ("asyncio (apps/hello)", "stdlib ThreadingHTTPServer"):
        with tempfile.TemporaryFile() as log:
            port = free_port()
            proc = start(kind, port, log)
            try:
                url = f"http://127.0.0.1:{port}/"
                client(url, 1, 1)  # warm-up
                for connections in CONNECTIONS:
                    rps, p99 = client(url, connections)
                    if kind.startswith("asyncio"):
                        best = max(best, rps)
                    print(f"{kind:<30} {connections:>5} {rps:>10,.0f} {p99:>8.2f}", flush=True)
            finally:
                proc.terminate()
                proc.wait(15)
    verdict = "met" if best >= TARGET_RPS else "NOT met"
    print(f"target >= {TARGET_RPS:,} req/s: {verdict} (best {best:,.0f} req/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
