"""Differential fuzzing of the hello server's request parser against h11.

hypothesis builds request heads from parts chosen to reach the smuggling corners
(Content-Length with Transfer-Encoding, duplicate and list Content-Lengths, obs-fold,
bare LF, whitespace before the colon, invalid tokens and control characters) and feeds
the same bytes to `find_head` + `parse_head` and to h11's server-side parser. Both must
accept or both reject; when both accept, method, target, HTTP version, header fields,
body framing and keep-alive must agree. The only disagreements allowed are the stricter
rejections listed in docs/apps.md ("Parser proof"), each tied to a property of the input
and to the reason our parser gives. We are never looser than h11.

Run size: FUZZ_EXAMPLES (1,000) generated heads per run (derandomized, so CI runs are
reproducible; HELLO_FUZZ_EXAMPLES=100000 for a long local run), plus the fixed corner
cases below.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

import h11
import pytest

# h11's own framing (RFC 9112 6.3) and keep-alive decisions; private, but h11 is pinned.
from h11._connection import _body_framing, _keep_alive
from hello_process import load_server_module
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

hello = load_server_module()

T = TypeVar("T")
U = TypeVar("U")
FUZZ_EXAMPLES = int(os.environ.get("HELLO_FUZZ_EXAMPLES", "1000"))

# Stricter rejections: the property of the input -> the reasons our parser may give.
STRICTER = {
    "obs-fold": {"obsolete line folding"},
    "bare-lf": {
        "bare LF line ending",
        "malformed header field",
        "control character in header field",
    },
    "cl-and-te": {"ambiguous message framing"},
    "te-on-http10": {"ambiguous message framing"},
    "http-version": {"unsupported HTTP version"},
    "target-form": {"unsupported request target form", "malformed request target"},
    "cl-list": {"malformed Content-Length", "conflicting content-length fields"},
    "control-char": {"control character in header field"},
}


def mostly(
    common: st.SearchStrategy[T], rare: st.SearchStrategy[U], rare_percent: int
) -> st.SearchStrategy[T | U]:
    """`common`, except `rare_percent` of the time: most heads stay valid long enough for
    the accept-accept comparisons to be many, while every corner is still reached."""
    rolls = st.sampled_from([False] * (100 - rare_percent) + [True] * rare_percent)
    return rolls.flatmap(lambda is_rare: rare if is_rare else common)


TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=8)
methods = mostly(
    st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "get", "M-SEARCH"]),
    st.one_of(tokens, st.sampled_from(["", "CONNECT", "G(T", "GE\tT", "G\x00T", "\xe9T"])),
    10,
)
printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
targets = mostly(
    st.one_of(
        st.sampled_from(["/", "/a?b=c", "/%00", "http://h/x?y"]),
        st.text(alphabet=printable, min_size=1).map(lambda text: "/" + text),
    ),
    st.sampled_from(
        ["*", "https://h", "h:443", "nope", "", "/a b", "/\x7f", "/\xe9", "http://[x/"]
    ),
    10,
)
versions = mostly(
    st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]),
    st.sampled_from(["HTTP/2.0", "HTTP/0.9", "HTTP/1.10", "http/1.1", "HTTP/1", "HTTP/1.1 "]),
    5,
)
names = mostly(
    st.one_of(
        st.sampled_from(
            ["Host", "Content-Length", "Transfer-Encoding", "Connection", "Cookie", "Expect"]
        ),
        tokens,
    ),
    st.sampled_from(["", "Bad Name", "X\x00", "X\xe9", "Host ", " X", "\tX"]),
    5,
)
values = st.one_of(
    st.sampled_from(
        [
            "a",
            "0",
            "5",
            "12",
            " 5 ",
            "5, 5",
            "5,6",
            "+5",
            "-1",
            "0x10",
            "1" * 21,
            "chunked",
            "Chunked",
            "gzip",
            "chunked, chunked",
            "gzip, chunked",
            "close",
            "keep-alive",
            "Keep-Alive, Upgrade",
            "closed",
            "100-continue",
            "",
            "a\tb",
            "caf\xe9",
        ]
    ),
    mostly(
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=12),
        st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=12),
        10,
    ),
)
separators = mostly(st.just(": "), st.sampled_from([":", ":\t", " : ", "\t:", ":  "]), 15)
line_endings = mostly(st.just("\r\n"), st.just("\n"), 2)


@dataclass
class Head:
    request_line: str
    fields: list[tuple[str, str, str, str]]  # name, separator, value, line ending
    folded_after: int | None  # an obs-fold continuation line after this field
    final: str
    properties: set[str] = field(default_factory=set)

    def encode(self) -> bytes:
        lines = [self.request_line]
        for index, (name, sep, value, eol) in enumerate(self.fields):
            lines.append(f"{name}{sep}{value}{eol}")
            if index == self.folded_after:
                lines.append(" folded\r\n")
        return "".join(lines).encode("latin-1") + self.final.encode("latin-1")


@st.composite
def heads(draw: st.DrawFn) -> Head:
    method, target, version = draw(methods), draw(targets), draw(versions)
    fields = draw(st.lists(st.tuples(names, separators, values, line_endings), max_size=6))
    if draw(st.sampled_from([True] * 9 + [False])):  # most requests carry one valid Host
        fields.insert(draw(st.integers(0, len(fields))), ("Host", ": ", "example", "\r\n"))
    folded = draw(mostly(st.none(), st.integers(0, max(0, len(fields) - 1)), 5))
    head = Head(
        request_line=f"{method} {target} {version}{draw(line_endings)}",
        fields=fields,
        folded_after=folded if fields else None,
        final=draw(line_endings),
    )
    head.properties = properties(head, method, target, version)
    return head


def properties(head: Head, method: str, target: str, version: str) -> set[str]:
    """Which of the documented stricter rules this input falls under, read from the bytes
    on the wire (a generated value may itself contain CR, LF or a folded line)."""
    found = set()
    raw = head.encode()
    without_crlf = raw.replace(b"\r\n", b"")
    if b"\n" in without_crlf:
        found.add("bare-lf")
    if re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", without_crlf):
        found.add("control-char")
    lines = []
    for line in raw.split(b"\n")[1:]:  # as h11 splits them, up to the blank line
        line = line.removesuffix(b"\r")
        if not line:
            break
        lines.append(line)
    if any(line[:1] in (b" ", b"\t") for line in lines):
        found.add("obs-fold")
    field_names = {line.partition(b":")[0].strip().lower() for line in lines}
    if {b"content-length", b"transfer-encoding"} <= field_names:
        found.add("cl-and-te")
    if b"transfer-encoding" in field_names and version == "HTTP/1.0":
        found.add("te-on-http10")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        found.add("http-version")
    if not target.startswith("/") and (target, method) != ("*", "OPTIONS"):
        try:
            absolute = target.startswith(("http://", "https://")) and urlsplit(target)
        except ValueError:
            absolute = False
        if not absolute:
            found.add("target-form")
    if any(line.partition(b":")[0].lower() == b"content-length" and b"," in line for line in lines):
        found.add("cl-list")
    return found


@dataclass(frozen=True)
class Parsed:
    method: str
    target: str
    http11: bool
    headers: tuple[tuple[str, str], ...]
    framing: tuple[str, int]
    keep_alive: bool | None  # None where ours closes anyway (a body it does not read)


def ours(raw: bytes) -> Parsed | str:
    """Our parser's verdict: the parsed request, or the reason it rejects."""
    try:
        found = hello.find_head(raw)
        assert found is not None, f"head not found in {raw!r}"
        start, end = found
        request = hello.parse_head(raw[start:end])
    except hello.BadRequest as err:
        return err.reason
    return Parsed(
        method=request.method,
        target=request.target,
        http11=request.http11,
        headers=tuple(sorted(request.headers.items())),
        framing=request.framing,
        keep_alive=None if request.unread_body or not request.http11 else request.keep_alive,
    )


def theirs(raw: bytes) -> Parsed | str:
    """h11's verdict, with its header list folded the way ours is (duplicates joined with
    ", ", cookies with "; ", an identical repeated Content-Length kept once)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as err:
        return f"h11: {err}"
    assert isinstance(event, h11.Request), f"h11 gave {event!r} for {raw!r}"
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key, text = name.decode("ascii"), value.decode("latin-1")
        if key in headers:
            if key != "content-length":
                headers[key] += ("; " if key == "cookie" else ", ") + text
        else:
            headers[key] = text
    kind, args = _body_framing(event.method, event)
    framing = (kind, args[0] if args else 0)
    http11 = event.http_version == b"1.1"
    unread = framing[0] == "chunked" or framing[1] > hello.MAX_DISCARDED_BODY
    unread = unread or (framing[1] > 0 and "expect" in headers)
    return Parsed(
        method=event.method.decode("ascii"),
        target=event.target.decode("ascii"),
        http11=http11,
        headers=tuple(sorted(headers.items())),
        framing=framing,
        keep_alive=None if unread or not http11 else _keep_alive(event),
    )


def check_agreement(raw: bytes, allowed: set[str]) -> None:
    mine, reference = ours(raw), theirs(raw)
    if isinstance(mine, Parsed) and isinstance(reference, Parsed):
        assert mine == reference, raw
    elif isinstance(mine, Parsed):
        pytest.fail(f"we accept what h11 rejects ({reference}): {raw!r}")
    elif isinstance(reference, Parsed):
        reasons = set().union(*(STRICTER[name] for name in allowed)) if allowed else set()
        assert mine in reasons, f"stricter than h11 without a documented rule ({mine}): {raw!r}"


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(heads())
@example(Head("GET / HTTP/1.1\r\n", [("Host", ": ", "a", "\r\n")], None, "\r\n"))
def test_parser_agrees_with_h11(head: Head) -> None:
    check_agreement(head.encode(), head.properties)


SMUGGLING_CORNERS = [
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        {"cl-and-te"},
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        {"cl-and-te"},
    ),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", set()),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", set()),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", {"cl-list"}),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", set()),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", set()),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", set()),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", set()),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", set()),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", {"te-on-http10"}),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", {"obs-fold"}),
    (b"GET / HTTP/1.1\nHost: a\n\n", {"bare-lf"}),
    (b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n", {"bare-lf"}),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", set()),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", set()),
    (b"GET / HTTP/1.1\r\n\r\n", set()),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", {"control-char"}),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", {"http-version"}),
    (b"GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n", set()),
    (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", set()),
    (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", set()),
    (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n", set()),
    (b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", {"target-form"}),
]


@pytest.mark.parametrize(("raw", "allowed"), SMUGGLING_CORNERS)
def test_smuggling_corners_agree_with_h11(raw: bytes, allowed: set[str]) -> None:
    check_agreement(raw, allowed)
    if not allowed:  # no documented difference: the verdicts match in kind
        assert isinstance(ours(raw), Parsed) == isinstance(theirs(raw), Parsed)
