"""The render cache: a target whose inputs are unchanged is not built again.

A cached render is found by a key made of everything the build reads and everything that
shapes its output: the SHA-256 of every file the target's kustomization tree names
(`deps.py`; paths relative to the repository root, so the base worktree of `meshready
diff` and the working tree share entries), the absence of the kustomization file names
kustomize would also look for, the kustomize binary's identity and version, the build
arguments, the wrapper kustomization's format, the meshready version, the code of the
modules that shape a result and this cache's format. Only successful renders are stored, and only after kustomize's own origin
annotations agree with the computed dependencies.

Layout under the cache directory ($MESHREADY_CACHE_DIR, else
$XDG_CACHE_HOME/meshready/render, else ~/.cache/meshready/render):

    render-v1/entries/ab/<key>       the digest of the blob holding the render
    render-v1/blobs/cd/<digest>      the serialized objects and origins (JSON)
    render-v1/binaries/<fingerprint> the SHA-256 of one installed kustomize binary
    render-v1/tmp/                   files being written, renamed into place when whole

Every write is a temporary file and `os.replace`, and every read checks the blob's digest,
so concurrent runs and interrupted writes never produce a torn or wrong result: at worst a
miss. Past a size (256 MiB unless $MESHREADY_RENDER_CACHE_MAX_MB says otherwise) the
least recently used files are removed; a hit refreshes its files' modification times.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshready import __version__
from meshready.cachedir import user_cache_dir
from meshready.errors import MeshreadyError
from meshready.render import kustomize as kz
from meshready.render.deps import Dependencies, DependencyScanner
from meshready.render.model import RenderedObject, RenderResult

FORMAT = 1
LAYOUT = f"render-v{FORMAT}"
# What build.py wraps every target in; a change there must change this string.
WRAPPER_FORMAT = "resources: [target]; buildMetadata: [originAnnotations]; origins root-relative"
DEFAULT_MAX_MB = 256
MAX_MB_ENV = "MESHREADY_RENDER_CACHE_MAX_MB"
_STALE_TEMPORARY_SECONDS = 3600

HIT, MISS, UNCACHEABLE = "hit", "miss", "uncacheable"


def cache_directory(env: Mapping[str, str] = os.environ) -> Path:
    return user_cache_dir("render", env)


def max_bytes(env: dict[str, str] | os._Environ = os.environ) -> int:
    raw = env.get(MAX_MB_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_MB << 20
    try:
        megabytes = int(raw)
    except ValueError:
        megabytes = -1
    if megabytes < 1:
        raise MeshreadyError(f"${MAX_MB_ENV}={raw!r}: give a whole number of MiB, 1 or more")
    return megabytes << 20


# The modules whose code shapes a render's result. Their bytes are part of the key, so a
# change to how targets are built or origins are kept (in a checkout, before any version
# bump) never meets results stored by the old code.
_RESULT_SHAPING_MODULES = ("build.py", "model.py", "kustomize.py", "deps.py", "cache.py")


def code_identity() -> str:
    digest = hashlib.sha256()
    for name in _RESULT_SHAPING_MODULES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def kustomize_identity(kustomize: kz.Kustomize, directory: Path) -> dict[str, Any]:
    """What tells one kustomize build apart from another: version, arguments, and the SHA-256
    of the binary. Hashing a 60 MB kubectl costs a fifth of a second, so the digest is kept
    in `directory`, found by the binary's path, size, inode, mtime and ctime (which no
    write leaves unchanged): each installed binary is hashed once, and two installs of the
    same binary share entries."""
    binary = Path(kustomize.command[0]).resolve()
    identity: dict[str, Any] = {
        "version": kustomize.version,
        "arguments": list(kustomize.command[1:]),
    }
    try:
        stat = binary.stat()
        fingerprint = f"{binary}|{stat.st_size}|{stat.st_ino}|{stat.st_mtime_ns}|{stat.st_ctime_ns}"
        remembered = directory / "binaries" / hashlib.sha256(fingerprint.encode()).hexdigest()
        try:
            digest = remembered.read_text().strip()
        except (OSError, UnicodeDecodeError):
            digest = ""
        if len(digest) != 64:
            digest = _sha256_file(binary)
            with contextlib.suppress(OSError):
                _write_atomically(directory, remembered, digest.encode())
        identity["sha256"] = digest
    except OSError:
        identity["binary"] = str(binary)  # unreadable: kustomize will fail to run anyway
    return identity


def _write_atomically(directory: Path, path: Path, data: bytes) -> None:
    """`data` at `path`, whole or not at all: written under `directory`/tmp, then renamed."""
    temporary_dir = directory / "tmp"
    temporary_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=temporary_dir, prefix=path.name[:16] + ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- serialization: exactly the types a fresh render has, or nothing ---------------------------


class _NotStorable(Exception):
    pass


def _check_plain(value: Any, where: str) -> None:
    """JSON keeps str, int, float, bool, None, lists and str-keyed dicts exactly; a YAML
    timestamp, binary, set or non-string key would come back different, so it is refused."""
    kind = type(value)
    if kind in (str, int, float, bool) or value is None:
        return
    if kind is list:
        for item in value:
            _check_plain(item, where)
    elif kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise _NotStorable(f"{where}: key {key!r} is not a string")
            _check_plain(item, where)
    else:
        raise _NotStorable(f"{where}: a {kind.__name__} value JSON cannot keep")


def _object_name(obj: dict[str, Any]) -> str:
    found = obj.get("metadata")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    return f"{obj.get('kind', '?')} {meta.get('name', '?')}"


def serialize(objects: list[RenderedObject]) -> bytes:
    for rendered in objects:
        _check_plain(rendered.obj, _object_name(rendered.obj))
        _check_plain(rendered.origin, _object_name(rendered.obj))
    payload = [{"obj": r.obj, "origin": r.origin} for r in objects]
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except (UnicodeEncodeError, ValueError) as err:
        raise _NotStorable(f"not serializable: {err}") from None


def deserialize(data: bytes) -> list[RenderedObject]:
    return [RenderedObject(obj=o["obj"], origin=o["origin"]) for o in json.loads(data)]


def origin_problem(objects: list[RenderedObject], deps: Dependencies) -> str | None:
    """kustomize's origin annotations, checked against the computed dependencies: every
    file an object came from (or the kustomization that generated it) must be in the set."""
    for rendered in objects:
        origin = rendered.origin
        if not origin:
            return f"{_object_name(rendered.obj)} has no origin annotation to check"
        for key in ("path", "configuredIn"):
            value = origin.get(key)
            if isinstance(value, str) and value not in deps.files:
                return (
                    f"{_object_name(rendered.obj)} comes from {value} ({key}), which the "
                    "kustomization files do not name: the dependencies are incomplete"
                )
        if origin.get("repo"):
            return f"{_object_name(rendered.obj)} comes from a remote repository"
    return None


# -- the cache ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    root: Path
    target: str
    status: str  # HIT, MISS or UNCACHEABLE
    reason: str = ""


@dataclass(frozen=True)
class Lookup:
    """A target's key (None when it cannot be cached) and its cached objects, on a hit."""

    root: Path
    target: str
    deps: Dependencies
    key: str | None
    objects: list[RenderedObject] | None = None


class RenderCache:
    """One run's view of the cache: dependency scanners and file digests are kept for the
    run (a fleet shares its bases), outcomes are collected for the summary."""

    def __init__(
        self, kustomize: kz.Kustomize, directory: Path | None = None, limit: int | None = None
    ) -> None:
        self.directory = (directory or cache_directory()) / LAYOUT
        self.limit = max_bytes() if limit is None else limit
        self.identity = kustomize_identity(kustomize, self.directory)
        self.code = code_identity()
        self._scanners: dict[Path, DependencyScanner] = {}
        self._digests: dict[Path, str | None] = {}
        self._running: dict[str, threading.Event] = {}  # key -> set when its render is over
        self._lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self.written = 0

    # -- keys ----------------------------------------------------------------------------

    def _scanner(self, root: Path) -> DependencyScanner:
        resolved = root.resolve()
        with self._lock:
            scanner = self._scanners.get(resolved)
            if scanner is None:
                scanner = self._scanners[resolved] = DependencyScanner(resolved)
        return scanner

    def _digest(self, path: Path, remembered: bool = True) -> str | None:
        if not remembered or path not in self._digests:
            try:
                self._digests[path] = _sha256_file(path)
            except OSError:
                self._digests[path] = None
        return self._digests[path]

    def key_for(
        self, root: Path, target: str, deps: Dependencies, remembered: bool = True
    ) -> str | None:
        """The key of `target`'s render; `remembered=False` hashes every file again."""
        resolved = root.resolve()
        inputs = []
        for relative in sorted(deps.files):
            digest = self._digest(resolved / relative, remembered)
            if digest is None:
                return None  # vanished or unreadable since the scan: build it, do not store
            inputs.append([relative, digest])
        for relative in sorted(deps.absent):
            if not remembered and os.path.lexists(resolved / relative):
                return None  # appeared since the scan
            inputs.append([relative, "absent"])
        material = [FORMAT, __version__, self.code, WRAPPER_FORMAT, self.identity, target, inputs]
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()

    # -- reading -------------------------------------------------------------------------

    def _entry_path(self, key: str) -> Path:
        return self.directory / "entries" / key[:2] / key

    def _blob_path(self, digest: str) -> Path:
        return self.directory / "blobs" / digest[:2] / digest

    def _record(self, root: Path, target: str, status: str, reason: str = "") -> None:
        with self._lock:
            self.outcomes.append(Outcome(root.resolve(), target, status, reason))

    def lookup(self, root: Path, target: str) -> Lookup:
        deps = self._scanner(root).dependencies(target)
        if deps.uncacheable:
            self._record(root, target, UNCACHEABLE, deps.uncacheable)
            return Lookup(root, target, deps, None)
        key = self.key_for(root, target, deps)
        if key is None:
            self._record(root, target, UNCACHEABLE, "a dependency could not be read")
            return Lookup(root, target, deps, None)
        while True:
            objects = self._load(key)
            if objects is not None:
                self._record(root, target, HIT)
                return Lookup(root, target, deps, key, objects)
            with self._lock:
                running = self._running.get(key)
                if running is None:
                    # This thread renders it; `release` lets any others waiting for it go on.
                    self._running[key] = threading.Event()
                    return Lookup(root, target, deps, key)  # recorded when it is stored
            # The same render is under way in another thread (diff: the same target on both
            # sides): wait for it, then it is a hit, or this thread's to render after all.
            self._wait_for(running)

    def _wait_for(self, running: threading.Event) -> None:
        running.wait()

    def release(self, lookup: Lookup) -> None:
        """The render `lookup` announced is over (stored or not)."""
        if lookup.key is None or lookup.objects is not None:
            return
        with self._lock:
            running = self._running.pop(lookup.key, None)
        if running is not None:
            running.set()

    def _load(self, key: str) -> list[RenderedObject] | None:
        entry = self._entry_path(key)
        try:
            digest = entry.read_text().strip()
            if len(digest) != 64:
                return None
            blob = self._blob_path(digest)
            data = blob.read_bytes()
        except (OSError, UnicodeDecodeError):
            return None
        if hashlib.sha256(data).hexdigest() != digest:
            return None  # torn or tampered: a miss, and the next store replaces it
        try:
            objects = deserialize(data)
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time()
        for path in (entry, blob):  # least recently *used*, not written
            with contextlib.suppress(OSError):
                os.utime(path, (now, now))
        return objects

    # -- writing -------------------------------------------------------------------------

    def store(self, lookup: Lookup, result: RenderResult) -> None:
        """Keep a fresh successful render, if its origins agree with its dependencies."""
        if lookup.key is None:
            return
        if not result.ok:
            self._record(
                lookup.root, lookup.target, MISS, "the render failed; failures are not cached"
            )
            return
        problem = origin_problem(result.objects, lookup.deps)
        if problem is None and self.key_for(lookup.root, lookup.target, lookup.deps, False) != (
            lookup.key
        ):
            # Edited while kustomize ran: the output may be of either content, so keep neither.
            self._record(lookup.root, lookup.target, MISS, "its files changed during the render")
            return
        if problem is None:
            try:
                data = serialize(result.objects)
            except _NotStorable as err:
                problem = str(err)
        if problem is not None:
            self._record(lookup.root, lookup.target, UNCACHEABLE, problem)
            return
        digest = hashlib.sha256(data).hexdigest()
        try:
            blob = self._blob_path(digest)
            if not blob.is_file():
                self._write(blob, data)
            self._write(self._entry_path(lookup.key), digest.encode())
        except OSError as err:
            self._record(
                lookup.root, lookup.target, MISS, f"cannot write the cache: {err.strerror}"
            )
            return
        self._record(lookup.root, lookup.target, MISS)

    def _write(self, path: Path, data: bytes) -> None:
        _write_atomically(self.directory, path, data)
        with self._lock:
            self.written += len(data)

    # -- size ----------------------------------------------------------------------------

    def close(self) -> None:
        """After a run that wrote something: prune past the size limit."""
        if self.written:
            prune(self.directory, self.limit)


def cache_report(cache: RenderCache, verbose: bool = False) -> list[str]:
    """A summary line of the run's outcomes; with `verbose`, first one line per target
    (naming the tree it was rendered in when there were several, as in `meshready diff`)."""
    lines = []
    several_roots = len({o.root for o in cache.outcomes}) > 1
    for outcome in sorted(cache.outcomes, key=lambda o: (o.target, str(o.root))):
        if not verbose:
            break
        where = f"{outcome.target} (in {outcome.root})" if several_roots else outcome.target
        if outcome.status == HIT:
            lines.append(f"{where}: render cache hit")
        elif outcome.status == MISS:
            because = f" ({outcome.reason})" if outcome.reason else ""
            lines.append(f"{where}: render cache miss{because}")
        else:
            lines.append(f"{where}: not cached: {outcome.reason}")
    counts = Counter(o.status for o in cache.outcomes)
    lines.append(
        f"render cache: {counts[HIT]} hits, {counts[MISS]} misses, "
        f"{counts[UNCACHEABLE]} not cacheable ({cache.directory})"
    )
    return lines


def _files(directory: Path) -> list[tuple[float, int, Path]]:
    """(mtime, size, path) of every stored file."""
    found = []
    for kind in ("entries", "blobs"):
        for dirpath, _, filenames in os.walk(directory / kind):
            for name in filenames:
                path = Path(dirpath) / name
                try:
                    stat = path.stat()
                except OSError:
                    continue
                found.append((stat.st_mtime, stat.st_size, path))
    return found


def prune(directory: Path, limit: int) -> int:
    """Remove least recently used files until the cache is under `limit` bytes (to 80% of
    it, so the next runs do not prune again at once); return the bytes removed. Entries
    whose blob went are misses, so entries and blobs may go independently."""
    removed = 0
    now = time.time()
    temporary_dir = directory / "tmp"
    if temporary_dir.is_dir():
        for leftover in temporary_dir.iterdir():  # from interrupted runs
            try:
                if now - leftover.stat().st_mtime > _STALE_TEMPORARY_SECONDS:
                    leftover.unlink()
            except OSError:
                pass
    files = _files(directory)
    total = sum(size for _, size, _ in files)
    if total <= limit:
        return 0
    goal = limit * 4 // 5
    for _, size, path in sorted(files):
        if total <= goal:
            break
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        removed += size
    return removed


@dataclass(frozen=True)
class CacheInfo:
    directory: Path
    entries: int
    blobs: int
    bytes: int
    limit: int


def info(directory: Path | None = None) -> CacheInfo:
    root = (directory or cache_directory()) / LAYOUT
    files = _files(root)
    entries = sum(1 for _, _, p in files if p.parent.parent.name == "entries")
    return CacheInfo(root, entries, len(files) - entries, sum(s for _, s, _ in files), max_bytes())


def clear(directory: Path | None = None) -> CacheInfo:
    """Remove every stored render; return what there was."""
    before = info(directory)
    shutil.rmtree(before.directory, ignore_errors=True)
    return before
