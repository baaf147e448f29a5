"""Rate accuracy of the load generator: 10, 100 and 1,000 requests/s against the local server.

For each rate, runs apps/loadgen/loadgen.py for BENCH_LOADGEN_SECONDS (default 10) with
`--json` against apps/hello/server.py on loopback, and prints achieved/target, the late
sends, and p99 latency from the intended send time (coordinated omission corrected) and
from the actual send.

    python bench/bench_loadgen.py
Target on the 2-core reference machine: achieved/target within 1% up to 1,000 rps.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "apps" / "hello" / "server.py"
LOADGEN = ROOT / "apps" / "loadgen" / "loadgen.py"
RATES = (10, 100, 1000)
SECONDS = float(os.environ.get("BENCH_LOADGEN_SECONDS", "10"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, log) -> subprocess.Popen:
    env = {**os.environ, "PORT": str(port), "LISTEN_ADDRESS": "127.0.0.1"}
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


def run_loadgen(url: str, rate: int) -> dict:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(SERVER_ADDR=url, REQUESTS_PER_SECOND=str(rate), DURATION=f"{SECONDS:g}")
    result = subprocess.run(
        [sys.executable, str(LOADGEN), "--json", "--report-interval", "3600"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def main() -> int:
    print(f"loadgen rate accuracy, {SECONDS:g} s per rate, against apps/hello on loopback")
    print(
        f"{'target rps':>10} {'sent':>7} {'achieved/target':>16} {'late':>6}"
        f" {'errors':>6} {'p99 ms':>8} {'p99 from send':>14}"
    )
    worst = 0.0
    with tempfile.TemporaryFile() as log:
        port = free_port()
        server = start_server(port, log)
        try:
            for rate in RATES:
                summary = run_loadgen(f"http://127.0.0.1:{port}/", rate)
                ratio = summary["achieved_ratio"]
                worst = max(worst, abs(ratio - 1))
                p99 = (summary["latency_ms"] or {}).get("p99", float("nan"))
                p99_send = (summary["service_latency_ms"] or {}).get("p99", float("nan"))
                print(
                    f"{rate:>10} {summary['sent']:>7} {ratio:>16.4f} {summary['late']:>6}"
                    f" {summary['errors']:>6} {p99:>8.2f} {p99_send:>14.2f}",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(15)
    verdict = "met" if worst <= 0.01 else "NOT met"
    print(f"target achieved/target within 1%: {verdict} (worst deviation {worst:.2%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
