"""Helpers of the mesh-readiness rules (analyze/rules/mesh.py) that no single rule
fixture pins down, called directly."""

from __future__ import annotations

from meshready.analyze.rules.mesh import istio_annotation


def test_an_annotation_domain_is_what_precedes_the_first_slash():
    # A Kubernetes key is `<prefix>/<name>`: an Istio-looking name under another prefix is
    # that prefix's annotation, not Istio's.
    assert istio_annotation("sidecar.istio.io/inject") is True
    assert istio_annotation("example.com/sidecar.istio.io/inject") is False
