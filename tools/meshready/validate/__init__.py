"""Offline schema validation, as kubeconform does it (docs/validate.md).

- `registry`: Kubernetes schemas (kubernetes-validate's wheel), CRDs, schema locations
- `core`: documents in, one `ResourceResult` per resource and version out (pure)
- `files` / `rendered`: the two inputs, files (fanned out over processes) and rendered targets
- `cache`: the result cache (stdlib only, so a hit is cheap)
- `output`: text, json, junit and tap, behind one write/flush interface

`meshready validate` imports this package on every run, including a cache hit, so it
imports nothing here; import the submodule you need.
"""
