"""Run the real hello server as a child process on loopback, for the apps' tests.

Shared by apps/hello/tests and apps/loadgen/tests. The server binds port 0 unless told
otherwise and reports the port it got in its `Starting server` line, so tests never race
for a free port.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

# The apps/ directory whose programs tests start as processes. `nox -s mutate` points it at
# the repository's own (tools/mutmut_alias.py): the tests there run in mutmut's copy, whose
# programs are rewritten with every mutant inline, importing mutmut. A program run as a
# process is `__main__`, which no mutant names, so it could kill none of them anyway.
PROGRAMS = Path(os.environ.get("ASM_READY_APPS_DIR") or Path(__file__).resolve().parents[2])
SERVER = PROGRAMS / "hello" / "server.py"
LOADGEN = PROGRAMS / "loadgen" / "loadgen.py"
_STARTED = re.compile(r"Starting server on port (\d+)")
# Proxy settings of the machine must never reroute loopback test traffic.
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def load_server_module() -> ModuleType:
    """apps/hello/server.py imported as the module `hello_server`, for tests of its pure parts."""
    if "hello_server" in sys.modules:
        return sys.modules["hello_server"]
    spec = importlib.util.spec_from_file_location("hello_server", SERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hello_server"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env.update(extra or {})
    return env


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class HelloProcess:
    def __init__(self, proc: subprocess.Popen[str], host: str) -> None:
        self.proc = proc
        self.host = host
        self.port = 0
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(
        self, predicate: Callable[[str], bool], timeout: float = 10.0, after: int = 0
    ) -> str:
        """The first line (from index `after` on) that matches, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        seen = after
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no matching log line; output so far: {self.lines!r}")
                self._changed.wait(remaining)

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def rss_kib(self, field: str = "VmRSS") -> int:
        """The server's resident memory from /proc (VmRSS now, VmHWM its peak), in KiB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
        assert match, f"no {field} in /proc/{self.proc.pid}/status"
        return int(match.group(1))

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start_hello(
    env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    preexec_fn: Callable[[], object] | None = None,
) -> HelloProcess:
    """`preexec_fn` runs in the child before the server starts (e.g. to lower a limit)."""
    settings = {"PORT": str(port), "LISTEN_ADDRESS": host, "PYTHONUNBUFFERED": "1"}
    settings.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, str(SERVER)],
        env=clean_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        preexec_fn=preexec_fn,
    )
    server = HelloProcess(proc, host)
    try:
        started = server.wait_for_line(lambda line: "Starting server" in line)
    except AssertionError:
        server.kill()
        raise
    match = _STARTED.search(started)
    server.port = int(match.group(1)) if match else port
    return server
