"""MR102's edges through analyze(), the public API (docs/testing.md): every way a Service
port declares its protocol to Istio, and the ports that make the proxy sniff."""

from __future__ import annotations

from pathlib import Path

import yaml
from meshready.analyze.engine import AnalysisConfig, analyze
from meshready.analyze.rules.mesh import protocol_of
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


PORTS_OF_TWO_SERVICES = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: shop
spec:
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app, version: v1}
    spec:
      securityContext:
        runAsUser: 1337
      containers:
      - name: app
        image: registry.example/app:1.0
        securityContext:
          runAsGroup: 1337
---
apiVersion: v1
kind: Service
metadata:
  name: a
  namespace: shop
spec:
  selector: {app: app}
  ports:
  - {name: web, port: 80, appProtocol: HTTP}
  - {name: dns, port: 53, protocol: UDP}
  - {name: http-a-b, port: 81}
---
apiVersion: v1
kind: Service
metadata:
  name: b
  namespace: shop
spec:
  selector: {app: app}
  ports:
  - {name: http, port: 80}
  - {name: dns-tcp, port: 53}
  - {name: http, port: 81}
"""


def findings_of(rule_id: str, text: str, tmp_path: Path) -> list[tuple[int, str]]:
    (tmp_path / "service.yaml").write_text(text)
    objects = [
        RenderedObject(obj=doc, origin={"path": "service.yaml"})
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
    ]
    report = analyze([RenderResult(target="t", objects=objects)], AnalysisConfig(), root=tmp_path)
    return sorted(
        (f.line, f.message.split(": ", 1)[1]) for f in report.findings if f.rule.id == rule_id
    )


def test_protocols_compare_by_istios_reading_of_each_port(tmp_path: Path):
    # appProtocol HTTP and a port named http agree; `http-a-b` is http; UDP and a
    # server-first TCP port do not agree
    found = findings_of("MR105", PORTS_OF_TWO_SERVICES, tmp_path)
    assert [detail for _, detail in found] == ["port 53 is udp in Service a and tcp in Service b"]


def test_envoy_uid_names_the_pod_or_the_container_at_the_field(tmp_path: Path):
    text = PORTS_OF_TWO_SERVICES
    lines = text.splitlines()
    assert findings_of("MR110", text, tmp_path) == [
        (next(i for i, t in enumerate(lines, 1) if "runAsUser: 1337" in t), "runAsUser of pod"),
        (
            next(i for i, t in enumerate(lines, 1) if "runAsGroup: 1337" in t),
            "runAsGroup of container app",
        ),
    ]


def test_protocol_of_reads_grpc_web_before_its_grpc_prefix():
    # Istio's protocol.Parse knows grpc-web as a protocol of its own, not as grpc.
    assert protocol_of("grpc-web") == "grpc-web"
    assert protocol_of("GRPC-Web-ui") == "grpc-web"
    assert protocol_of("grpc-api") == "grpc"
    assert protocol_of("grpcweb") is None
