"""The load generator's figures: rate accuracy, and how well its run is bounded.

1. Rate accuracy: 10, 100 and 1,000 requests/s against apps/hello/server.py on loopback,
   for BENCH_LOADGEN_SECONDS each (default 10; 1 with --quick): achieved/target, the
   exact late and dropped counts, p99 latency from the intended send time (coordinated
   omission corrected) and from the actual send, and the worker threads started.
2. Bounds: an impossible 20,000 requests/s, CONCURRENCY=1000 at 10 requests/s, and a
   server that trickles one byte every 50 ms: each run's time from its first slot to its
   summary (`run_s`) against DURATION + TIMEOUT + the finishing grace, and the process's
   wall time (which adds the interpreter's start-up).

    python bench/bench_loadgen.py            # about 45 s
    python bench/bench_loadgen.py --quick    # about 8 s

Targets on the 2-core reference machine: achieved/target within 1% up to 1,000 rps, and
every bounded run over by less than DURATION + TIMEOUT + 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "apps" / "hello" / "server.py"
LOADGEN = ROOT / "apps" / "loadgen" / "loadgen.py"
RATES = (10, 100, 1000)
FINISH_GRACE = 0.5  # loadgen.FINISH_GRACE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, log) -> subprocess.Popen:
    env = {**os.environ, "PORT": str(port), "LISTEN_ADDRESS": "127.0.0.1", "VERSION": "v1"}
    proc = subprocess.Popen([sys.executable, str(SERVER)], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("hello server did not start")


def run_loadgen(url: str, rate: float, seconds: float, **settings: str) -> tuple[dict, float]:
    """loadgen's --json summary, and the wall time of its process."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(SERVER_ADDR=url, REQUESTS_PER_SECOND=f"{rate:g}", DURATION=f"{seconds:g}")
    env.update(settings)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(LOADGEN), "--json", "--report-interval", "3600"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout), time.monotonic() - started


class TrickleServer:
    """A status line, then one header byte every 50 ms until closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Trickle: ")
                while not self.stop.wait(0.05):
                    conn.sendall(b"a")
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


def rate_accuracy(url: str, seconds: float) -> float:
    print(f"rate accuracy, {seconds:g} s per rate, against apps/hello on loopback")
    print(
        f"{'target rps':>10} {'sent':>7} {'dropped':>7} {'achieved/target':>16} {'late':>6}"
        f" {'errors':>6} {'p99 ms':>8} {'p99 from send':>14} {'workers':>7}"
    )
    worst = 0.0
    for rate in RATES:
        summary, _ = run_loadgen(url, rate, seconds)
        ratio = summary["achieved_ratio"]
        worst = max(worst, abs(ratio - 1))
        p99 = (summary["latency_ms"] or {}).get("p99", float("nan"))
        p99_send = (summary["service_latency_ms"] or {}).get("p99", float("nan"))
        print(
            f"{rate:>10} {summary['sent']:>7} {summary['dropped']:>7} {ratio:>16.4f}"
            f" {summary['late']:>6} {summary['errors']:>6} {p99:>8.2f} {p99_send:>14.2f}"
            f" {summary['workers']:>7}",
            flush=True,
        )
    verdict = "met" if worst <= 0.01 else "NOT met"
    print(f"target achieved/target within 1%: {verdict} (worst deviation {worst:.2%})")
    return worst


def bounds(url: str, quick: bool) -> bool:
    seconds = 1.0 if quick else 2.0
    trickle = TrickleServer()
    cases = [
        ("20,000 rps, CONCURRENCY=4", url, 20000, seconds, {"CONCURRENCY": "4", "TIMEOUT": "1"}),
        ("CONCURRENCY=1000 at 10 rps", url, 10, 1.0, {"CONCURRENCY": "1000"}),
        (
            "trickling server, TIMEOUT=0.5s",
            f"http://127.0.0.1:{trickle.port}/",
            5,
            seconds,
            {"TIMEOUT": "0.5"},
        ),
    ]
    print(
        "\nbounded runs: run time (first slot to summary) against DURATION + TIMEOUT + grace;"
        " wall time adds the interpreter's start-up"
    )
    print(
        f"{'case':>32} {'DURATION':>8} {'bound s':>8} {'run s':>6} {'wall s':>7} {'sent':>6}"
        f" {'dropped':>7} {'timeouts':>8} {'workers':>7}"
    )
    held = True
    try:
        for name, target, rate, duration, settings in cases:
            summary, wall = run_loadgen(target, rate, duration, **settings)
            bound = duration + float(settings.get("TIMEOUT", "2")) + FINISH_GRACE
            held = held and summary["run_s"] <= bound
            print(
                f"{name:>32} {duration:>8g} {bound:>8.2f} {summary['run_s']:>6.2f} {wall:>7.2f}"
                f" {summary['sent']:>6}"
                f" {summary['dropped']:>7} {summary['timeouts']:>8} {summary['workers']:>7}",
                flush=True,
            )
    finally:
        trickle.close()
    print(
        f"target every run within DURATION + TIMEOUT + {FINISH_GRACE:g} s: {'met' if held else 'NOT met'}"
    )
    return held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s per rate: a few seconds in all")
    args = parser.parse_args(argv)
    seconds = float(os.environ.get("BENCH_LOADGEN_SECONDS", "1" if args.quick else "10"))
    with tempfile.TemporaryFile() as log:
        port = free_port()
        server = start_server(port, log)
        try:
            url = f"http://127.0.0.1:{port}/"
            rate_accuracy(url, seconds)
            bounds(url, args.quick)
        finally:
            server.terminate()
            server.wait(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
