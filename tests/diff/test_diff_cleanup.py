"""`meshready diff` stopped mid-render: SIGTERM and SIGINT remove its git worktree and temp
dirs; a SIGKILLed run's leftovers are removed by the next run, and a live run's are not.

A real git repository in a temp dir and a real `meshready diff`; kustomize is a script that
reports on a FIFO when it builds the base side (so the worktree exists) and then blocks on
another FIFO, so the test knows the diff is mid-render without sleeping."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import MESHREADY, run_cli, write_tree
from meshready import git as gitrev
from meshready import scratch, signals
from test_diff import GIT_ENV, commit_all, git

FAKE_KUSTOMIZE = """\
#!/bin/sh
# A kustomize that never finishes: says which side it builds, then waits on a FIFO.
if [ "$1" = version ]; then echo v5.0.0; exit 0; fi
side=head
if grep -q meshready-diff- "$2/kustomization.yaml"; then side=base; fi
echo "$side $$" > "$FAKE_STARTED"
read line < "$FAKE_RELEASE"
"""

DEADLINE = 60.0  # seconds; generous for a loaded 2-core machine, never reached when it works


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main has one target; the checked-out branch changes it."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    write_tree(
        root,
        {
            "pyproject.toml": '[tool.meshready]\ntarget_roots = ["overlays"]\n',
            "overlays/a/kustomization.yaml": "resources:\n- cm.yaml\n",
            "overlays/a/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
            "data:\n  mode: slow\n",
        },
    )
    commit_all(root, "base")
    git(root, "checkout", "--quiet", "-b", "feature")
    (root / "overlays/a/cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  mode: fast\n"
    )
    commit_all(root, "change")
    return root


@pytest.fixture
def temp_dir(tmp_path: Path) -> Path:
    """The runs' $TMPDIR: only these tests' runs leave anything in it."""
    path = tmp_path / "tmp"
    path.mkdir()
    return path


def leftovers(temp_dir: Path) -> list[str]:
    return sorted(p.name for p in temp_dir.iterdir())


def worktrees(repo: Path) -> list[str]:
    listed = git(repo, "worktree", "list", "--porcelain")
    return [
        line.removeprefix("worktree ")
        for line in listed.splitlines()
        if line.startswith("worktree ")
    ]


@dataclass
class SlowDiff:
    """A `meshready diff` whose kustomize blocks until released."""

    proc: subprocess.Popen
    started: int  # read end of the FIFO the fake kustomize reports on
    writer: int  # our own write end of it
    release: Path
    kustomize_pids: list[int]

    def wait_for_base_render(self) -> int:
        """Block until the fake kustomize builds the base side; its pid."""
        pending = b""
        end = time.monotonic() + DEADLINE
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.started], [], [], left)
            if ready:
                pending += os.read(self.started, 4096)
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    side, pid = line.decode().split()
                    self.kustomize_pids.append(int(pid))
                    if side == "base":
                        return int(pid)
            assert self.proc.poll() is None, self.proc.communicate()
        raise AssertionError("the base side never started rendering")

    def release_kustomize(self) -> None:
        """Let any fake kustomize still waiting exit (after a SIGKILL nobody kills them)."""
        try:
            fd = os.open(self.release, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody is waiting
            return
        os.close(fd)  # EOF for every reader: each one's `read` fails and it exits


@pytest.fixture
def slow_diff(tmp_path: Path, repo: Path, temp_dir: Path):
    runs: list[SlowDiff] = []
    fake = tmp_path / "kustomize-slow"
    fake.write_text(FAKE_KUSTOMIZE)
    fake.chmod(0o755)

    def start(*args: str) -> SlowDiff:
        number = len(runs)
        started, release = tmp_path / f"started-{number}", tmp_path / f"release-{number}"
        os.mkfifo(started)
        os.mkfifo(release)
        reader = os.open(started, os.O_RDONLY | os.O_NONBLOCK)
        # A writer of our own, so the FIFO never reads as closed between the fakes' writes.
        writer = os.open(started, os.O_WRONLY)
        env = {
            **os.environ,
            **GIT_ENV,
            "KUSTOMIZE": str(fake),
            "TMPDIR": str(temp_dir),
            "FAKE_STARTED": str(started),
            "FAKE_RELEASE": str(release),
        }
        proc = subprocess.Popen(
            [MESHREADY, "diff", "--base", "main", *args],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        run = SlowDiff(proc, reader, writer, release, [])
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
        run.proc.communicate()
        run.release_kustomize()
        os.close(run.started)
        os.close(run.writer)


def assert_gone(pids: list[int]) -> None:
    """Every fake kustomize has exited: meshready killed and reaped them before exiting, so
    none is left to read a deleted worktree (a recycled pid runs something else)."""
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert b"kustomize-slow" not in command, f"kustomize {pid} still running"


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
def test_a_signal_mid_render_removes_the_worktree_and_temp_dirs(
    repo: Path, temp_dir: Path, slow_diff, signum: int, exit_code: int
):
    run = slow_diff()
    kustomize = run.wait_for_base_render()
    # Mid-render: the base worktree and the run's temp dir exist.
    assert len(worktrees(repo)) == 2
    assert any(name.startswith(gitrev.CHECKOUT_PREFIX) for name in leftovers(temp_dir))

    run.proc.send_signal(signum)
    _, stderr = run.proc.communicate(timeout=DEADLINE)

    assert run.proc.returncode == exit_code, stderr
    name = signal.Signals(signum).name
    assert f"meshready: stopped by {name}; its worktree and temp dirs are removed" in stderr
    assert "Traceback" not in stderr
    assert worktrees(repo) == [str(repo)]
    assert leftovers(temp_dir) == []
    assert_gone([kustomize, *run.kustomize_pids])


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_killed_runs_leftovers_are_pruned_by_the_next_run_but_a_live_runs_are_not(
    repo: Path, temp_dir: Path, slow_diff
):
    live = slow_diff()
    live.wait_for_base_render()
    live_dirs = leftovers(temp_dir)
    live_trees = worktrees(repo)
    assert live_dirs and len(live_trees) == 2

    killed = slow_diff()
    killed.wait_for_base_render()
    killed.proc.send_signal(signal.SIGKILL)
    killed.proc.communicate(timeout=DEADLINE)
    killed.release_kustomize()  # its kustomize outlives it; nobody else will end them
    stale_dirs = sorted(set(leftovers(temp_dir)) - set(live_dirs))
    stale_trees = sorted(set(worktrees(repo)) - set(live_trees))
    assert stale_dirs and len(stale_trees) == 1  # what a SIGKILL leaves

    # The next run (the real kustomize) removes the killed run's leftovers only.
    env = {**os.environ, **GIT_ENV, "TMPDIR": str(temp_dir)}
    next_run = run_cli("diff", "--base", "main", cwd=repo, env=env)
    assert next_run.returncode == 0, next_run.stderr
    assert "+  mode: fast" in next_run.stdout
    assert leftovers(temp_dir) == live_dirs
    assert worktrees(repo) == live_trees

    # And the live run, stopped at last, cleans up after itself.
    live.proc.send_signal(signal.SIGTERM)
    live.proc.communicate(timeout=DEADLINE)
    assert live.proc.returncode == 143
    assert leftovers(temp_dir) == []
    assert worktrees(repo) == [str(repo)]


def test_an_unlocked_directory_is_pruned_only_once_it_is_old(temp_dir: Path):
    young, old = temp_dir / "meshready-diff-young", temp_dir / "meshready-diff-old"
    young.mkdir()
    old.mkdir()
    (old / "file").write_text("left by a meshready from before the lock")
    long_ago = time.time() - scratch.UNLOCKED_GRACE_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    unrelated = temp_dir / "other-tool-dir"
    unrelated.mkdir()
    os.utime(unrelated, (long_ago, long_ago))

    assert scratch.prune_stale(gitrev.CHECKOUT_PREFIX, temp_dir) == [old]
    assert leftovers(temp_dir) == ["meshready-diff-young", "other-tool-dir"]


def test_a_held_lock_keeps_a_directory_and_a_released_one_frees_it(temp_dir: Path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(temp_dir))
    directory, fd = scratch.claim(gitrev.CHECKOUT_PREFIX)
    assert (directory / scratch.OWNER_LOCK).read_text() == f"{os.getpid()}\n"
    # flock is per open file: another open of the lock file (as another process would) is
    # refused while this one holds it.
    assert scratch.prune_stale(gitrev.CHECKOUT_PREFIX, temp_dir) == []
    assert directory.is_dir()
    os.close(fd)  # what the kernel does when the owner dies
    assert scratch.prune_stale(gitrev.CHECKOUT_PREFIX, temp_dir) == [directory]
    assert not directory.exists()


def test_a_signal_inside_a_deferred_step_is_raised_when_the_step_ends():
    hooks: list[str] = []
    steps: list[str] = []
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    stopping = signals.stop_on_signals(lambda: hooks.append("killed builds"))
    with pytest.raises(signals.Stopped) as stopped, stopping:
        with signals.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)  # a second signal is ignored
            steps.append("the step finished")
        steps.append("never reached")
    assert (stopped.value.exit_code, stopped.value.name) == (143, "SIGTERM")
    assert steps == ["the step finished"]
    assert hooks == ["killed builds"]
    # The handlers in place before are back.
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
