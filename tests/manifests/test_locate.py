"""The locator parses only the source documents a finding can come from; it must pick
the same document as parsing them all and scanning in order (same kind and name, else a
name kustomize extended, else the first of the kind)."""

from __future__ import annotations

from pathlib import Path

import pytest
from meshready.manifests.loader import load_file
from meshready.manifests.locate import Locator

SOURCE = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-canary
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: "w\\x65b"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: 0x10
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: 'it''s'
---
apiVersion: v1
kind: Service
metadata:
  name: api
---
apiVersion: apps/v1
kind: "Deploym\\u0065nt"
metadata:
  name: hidden
"""


def reference_line(path: Path, kind: str, name: str) -> int | None:
    """The matching rule applied to every parsed document, in order."""
    documents = [d for d in load_file(path) if d.error is None]
    same_kind = [d for d in documents if isinstance(d.data, dict) and d.data.get("kind") == kind]
    names = [(d, str((d.data.get("metadata") or {}).get("name", ""))) for d in same_kind]
    found = next((d for d, n in names if n == name), None)
    found = found or next((d for d, n in names if n and n in name), None)
    found = found or (same_kind[0] if same_kind else None)
    return None if found is None else found.line_of(("metadata", "name"))


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("Deployment", "web"),  # only an escaped name matches exactly
        ("Deployment", "prod-web-canary"),  # namePrefix
        ("Deployment", "16"),  # a number written in hex
        ("Deployment", "it's"),  # a quote doubled in the source
        ("Deployment", "hidden"),  # a kind written with an escape
        ("Deployment", "nothing-like-it"),  # first document of the kind
        ("Service", "api"),
        ("ServiceAccount", "web"),
        ("ConfigMap", "web"),  # no document of the kind
    ],
)
def test_locator_picks_the_document_a_full_scan_picks(tmp_path: Path, kind: str, name: str):
    (tmp_path / "all.yaml").write_text(SOURCE)
    expected = reference_line(tmp_path / "all.yaml", kind, name)
    assert Locator(tmp_path).locate("all.yaml", kind, name, ("metadata", "name")) == expected


def test_locator_lines_of_specific_documents(tmp_path: Path):
    (tmp_path / "all.yaml").write_text(SOURCE)
    locator = Locator(tmp_path)

    def line(kind: str, name: str) -> int | None:
        return locator.locate("all.yaml", kind, name, ("metadata", "name"))

    assert line("Deployment", "web") == 14  # the escaped "w\x65b", not web-canary
    assert line("Deployment", "16") == 19
    assert line("Deployment", "hidden") == 34
    assert line("Deployment", "prod-web-canary") == 9
    assert line("ConfigMap", "web") is None
