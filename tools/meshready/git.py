"""The one git wrapper: every git command meshready runs goes through `_git` (no hooks,
no stdin, a timeout). `meshready diff` takes its base revision and a temporary checkout
of it (`git worktree add --detach`, always removed; a killed run's is pruned by the next)
from here; `meshready images` takes the commit, dirtiness and remote it tags and labels
images with."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from meshready import scratch, signals
from meshready.errors import EXIT_USAGE, MeshreadyError

# The base when none is given: the merge base of HEAD with the first that exists, so that a
# branch is compared with where it forked, not with whatever main has gained since.
DEFAULT_BASES = ("origin/main", "main")
MERGE_BASE_SUFFIX = "..."


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    # No hooks: a post-checkout hook must not run (or slow down) a throwaway checkout.
    command = ["git", "-c", "core.hooksPath=/dev/null", *args]
    try:
        return subprocess.run(
            command,
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise MeshreadyError("git is not installed or not on PATH", EXIT_USAGE) from None
    except subprocess.TimeoutExpired:
        raise MeshreadyError(f"git {' '.join(args)} timed out", EXIT_USAGE) from None


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"git exited with {proc.returncode}"


def toplevel(path: Path) -> Path:
    """The root of the git work tree holding `path`."""
    proc = _git(path, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        raise MeshreadyError(
            f"{path} is not inside a git repository: meshready diff compares with a git revision",
            EXIT_USAGE,
        )
    return Path(proc.stdout.strip()).resolve()


def commit_of(repo: Path, ref: str) -> str | None:
    """The full commit id `ref` names, or None."""
    if ref.startswith("-"):  # would be read as an option
        return None
    proc = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return proc.stdout.strip() if proc.returncode == 0 else None


@dataclass(frozen=True)
class BaseRevision:
    commit: str
    described: str  # how it was chosen: "main", "merge base of HEAD and origin/main"

    @property
    def label(self) -> str:
        if self.commit.startswith(self.described.lower()):  # given as a commit id
            return self.commit[:7]
        return f"{self.described} ({self.commit[:7]})"


def _merge_base(repo: Path, ref: str) -> BaseRevision:
    proc = _git(repo, "merge-base", "HEAD", ref)
    if proc.returncode != 0:
        reason = _last_line(proc) if proc.stderr.strip() else "no common ancestor"
        raise MeshreadyError(
            f"no merge base of HEAD and {ref}: {reason} "
            "(in a shallow clone, fetch the history: git fetch --unshallow, or fetch-depth: 0)",
            EXIT_USAGE,
        )
    return BaseRevision(proc.stdout.strip(), f"merge base of HEAD and {ref}")


def resolve_base(repo: Path, spec: str | None) -> BaseRevision:
    """`spec` as given (`REF`), its merge base with HEAD (`REF...`), or the default: the
    merge base of HEAD with origin/main, falling back to main."""
    if spec is None:
        for candidate in DEFAULT_BASES:
            if commit_of(repo, candidate):
                return _merge_base(repo, candidate)
        raise MeshreadyError(
            f"no base to compare with: none of {', '.join(DEFAULT_BASES)} exists in {repo}; "
            "pass --base REF",
            EXIT_USAGE,
        )
    ref = spec.removesuffix(MERGE_BASE_SUFFIX)
    if not ref or commit_of(repo, ref) is None:
        raise MeshreadyError(
            f"base ref {ref!r} does not exist in {repo} (fetch it first, e.g. `git fetch origin main`)",
            EXIT_USAGE,
        )
    if spec.endswith(MERGE_BASE_SUFFIX):
        return _merge_base(repo, ref)
    return BaseRevision(commit_of(repo, ref) or "", ref)


# A checkout lives in <tempdir>/meshready-diff-XXXX/base, a `scratch` directory its
# process holds locked while it runs; a killed run's is removed by the next run.
CHECKOUT_PREFIX = "meshready-diff-"


def prune_stale_checkouts(repo: Path) -> list[Path]:
    """Remove the checkouts of dead runs under the temp dir, then git's records of
    worktrees whose directories are gone (of this or an earlier run); the ones removed."""
    removed = scratch.prune_stale(CHECKOUT_PREFIX)
    listed = _git(repo, "worktree", "list", "--porcelain")
    for line in listed.stdout.splitlines():
        path = line.removeprefix("worktree ")
        ours = path != line and Path(path).parent.name.startswith(CHECKOUT_PREFIX)
        if ours and not Path(path).exists():
            # prune drops only records whose directory is gone (and not locked ones).
            _git(repo, "worktree", "prune")
            break
    return removed


@contextmanager
def checkout(repo: Path, commit: str) -> Iterator[Path]:
    """A detached worktree of `commit` in a temp dir, removed on exit, error or not,
    SIGTERM and SIGINT included (under `signals.stop_on_signals`); leftovers of runs that
    were killed outright are removed first."""
    prune_stale_checkouts(repo)
    holder: Path | None = None
    lock = -1
    try:
        # Created and removed whole: a signal in between waits until the step is done.
        with signals.deferred():
            holder, lock = scratch.claim(CHECKOUT_PREFIX)
            tree = holder / "base"
            proc = _git(repo, "worktree", "add", "--detach", "--quiet", str(tree), commit)
        if proc.returncode != 0:
            raise MeshreadyError(
                f"cannot check out {commit[:7]} into a temporary worktree: {_last_line(proc)}",
                EXIT_USAGE,
            )
        yield tree
    finally:
        with signals.deferred():
            if holder is not None:
                _remove_checkout(repo, holder, lock)


def _remove_checkout(repo: Path, holder: Path, lock: int) -> None:
    tree = holder / "base"
    removed = _git(repo, "worktree", "remove", "--force", str(tree)).returncode == 0
    scratch.release(holder, lock)
    if not removed and str(tree) in _git(repo, "worktree", "list", "--porcelain").stdout:
        # Its directory is gone now, so prune drops git's record of it (and only stale ones).
        _git(repo, "worktree", "prune")


# ---------------------------------------------------------------- the state images are tagged from


@dataclass(frozen=True)
class GitState:
    sha: str  # full commit id
    dirty: bool
    commit_time: int  # seconds since the epoch, committer time
    source: str  # where the source lives (remote URL), "" when unknown


def source_url(remote: str) -> str:
    """A browsable https URL for a git remote (scp-like ssh remotes included); remotes with
    credentials in them are reduced to host and path. A remote that is a local path or a
    file:// URL (a clone of a clone) names no public repository: "" then, and no label."""
    remote = remote.strip()
    scp = re.fullmatch(r"(?:[\w.-]+@)?([\w-]+(?:\.[\w-]+)+):(?!//)(.+)", remote)
    if scp:
        remote = f"https://{scp.group(1)}/{scp.group(2).lstrip('/')}"
    remote = re.sub(r"^(ssh|git)://([^@/]+@)?", "https://", remote)
    remote = re.sub(r"^(https?://)[^@/]+@", r"\1", remote)
    if not re.match(r"https?://[^/]+\.[^/]+/.", remote):
        return ""
    return remote.removesuffix(".git")


def repository_state(root: Path) -> GitState:
    """The commit, dirtiness and remote of the work tree at `root`."""

    def output(*args: str) -> str:
        proc = _git(root, *args)
        if proc.returncode != 0:
            raise MeshreadyError(
                f"git {' '.join(args)} failed in {root}: {_last_line(proc)} "
                "(images are tagged from git: build from a git checkout)"
            )
        return proc.stdout

    sha, epoch = output("log", "-1", "--format=%H %ct").split()
    # Untracked files count: a build context may COPY them. Ignored files do not.
    dirty = bool(output("status", "--porcelain").strip())
    remote = _git(root, "remote", "get-url", "origin")
    return GitState(
        sha, dirty, int(epoch), source_url(remote.stdout) if remote.returncode == 0 else ""
    )
