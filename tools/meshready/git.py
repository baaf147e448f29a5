"""The git edge of `meshready diff`: which revision is the base, and a temporary checkout
of it (`git worktree add --detach`) that is always removed afterwards."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


@contextmanager
def checkout(repo: Path, commit: str) -> Iterator[Path]:
    """A detached worktree of `commit` in a temp dir, removed on exit, error or not."""
    holder = Path(tempfile.mkdtemp(prefix="meshready-diff-"))
    tree = holder / "base"
    try:
        proc = _git(repo, "worktree", "add", "--detach", "--quiet", str(tree), commit)
        if proc.returncode != 0:
            raise MeshreadyError(
                f"cannot check out {commit[:7]} into a temporary worktree: {_last_line(proc)}",
                EXIT_USAGE,
            )
        yield tree
    finally:
        removed = _git(repo, "worktree", "remove", "--force", str(tree)).returncode == 0
        shutil.rmtree(holder, ignore_errors=True)
        if not removed and str(tree) in _git(repo, "worktree", "list", "--porcelain").stdout:
            # Its directory is gone now, so prune drops git's record of it (and only stale ones).
            _git(repo, "worktree", "prune")
