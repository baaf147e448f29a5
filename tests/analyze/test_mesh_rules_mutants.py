"""MR102's edges through analyze(), the public API (docs/testing.md): every way a Service
port declares its protocol to Istio, and the ports that make the proxy sniff."""

from __future__ import annotations

from pathlib import Path

import yaml
from meshready.analyze.engine import AnalysisConfig, analyze
from meshready.render import RenderedObject, RenderResult

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: ports
  namespace: shop
spec:
  selector: {app: ports}
  ports:
  - {name: grpc-web, port: 81}
  - {name: HTTP, port: 82}
  - {name: custom, port: 83, appProtocol: HTTP2}
  - {name: dns, port: 5353, protocol: UDP}
  - {name: dns-tcp, port: 54, protocol: udp}
  - {name: mysql-main, port: 3307}
  - {name: db, port: 3306}
  - {name: smtp, port: 25}
  - {name: mongo-db, port: 27018}
  - {name: web, port: 8080}
  - {name: httpx, port: 84}
  - {name: x-http, port: 86}
  - {port: 85}
  - {name: dns53, port: 53, protocol: TCP}
  - {name: documents, port: 27017}
"""


def port_findings(text: str, tmp_path: Path) -> list[tuple[int, str]]:
    (tmp_path / "service.yaml").write_text(text)
    objects = [
        RenderedObject(obj=doc, origin={"path": "service.yaml"})
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
    ]
    report = analyze([RenderResult(target="t", objects=objects)], AnalysisConfig(), root=tmp_path)
    return sorted(
        (f.line, f.message.split(": ", 1)[1]) for f in report.findings if f.rule.id == "MR102"
    )


def test_only_ports_istio_would_sniff_are_reported(tmp_path: Path):
    lines = SERVICE.splitlines()

    def line(needle: str) -> int:
        return next(i for i, text in enumerate(lines, 1) if needle in text)

    assert port_findings(SERVICE, tmp_path) == [
        (line("name: web"), "port 8080 named 'web'"),
        (line("name: httpx"), "port 84 named 'httpx'"),
        (line("name: x-http"), "port 86 named 'x-http'"),
        (line("{port: 85}"), "port 85 has no name"),
    ]


def test_an_empty_app_protocol_is_no_protocol(tmp_path: Path):
    text = SERVICE.replace("appProtocol: HTTP2", 'appProtocol: ""')
    assert "port 83 named 'custom'" in [detail for _, detail in port_findings(text, tmp_path)]
