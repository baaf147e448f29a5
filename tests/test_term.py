"""Colour and progress follow the terminal conventions (NO_COLOR, FORCE_COLOR, TERM, a TTY)."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

import pytest
from meshready.term import Progress, color_enabled, paint


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "tty", "expected"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, True, True),  # an empty NO_COLOR is unset, by the convention
        ({"FORCE_COLOR": "1"}, False, True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),
        ({"TERM": "dumb"}, True, False),
    ],
)
def test_colour_follows_the_conventions(env, tty, expected):
    stream = Tty() if tty else io.StringIO()
    assert color_enabled(stream, env) is expected
    assert (paint("x", "red", stream, env) != "x") is expected


def test_progress_draws_only_on_a_terminal():
    piped = io.StringIO()
    progress = Progress(3, "rendering", piped)
    for _ in range(3):
        progress.advance("t")
    progress.close()
    assert piped.getvalue() == ""

    tty = Tty()
    progress = Progress(3, "rendering", tty)
    for name in ("a", "b", "c"):
        progress.advance(name)
    assert "[3/3] rendering c" in tty.getvalue()
    progress.close()
    assert tty.getvalue().endswith("\r")


def test_the_main_job_colours_its_verdict_on_a_terminal_unless_no_color(mini_repo):
    def verdict(env: dict[str, str]) -> bytes:
        leader, follower = pty.openpty()
        proc = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "meshready"), "check", "overlays/dev"],
            cwd=mini_repo,
            stdout=subprocess.DEVNULL,
            stderr=follower,
            env={**os.environ, **env},
            timeout=120,
            check=False,
        )
        os.close(follower)
        out = b""
        try:
            while chunk := os.read(leader, 65536):
                out += chunk
        except OSError:
            pass
        os.close(leader)
        assert proc.returncode in (0, 1)
        return out

    coloured = verdict({"NO_COLOR": "", "TERM": "xterm"})
    plain = verdict({"NO_COLOR": "1", "TERM": "xterm"})
    assert b"\x1b[" in coloured and b"result:" in coloured
    assert b"\x1b[" not in plain and b"result:" in plain
