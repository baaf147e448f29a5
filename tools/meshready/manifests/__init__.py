"""Kubernetes manifests as data, shared by validate, analyze, diff and gitops.

- `inputs`: which files a list of inputs (files, directories, `-`) stands for
- `loader`: YAML from files, directories and stdin, bounded against hostile input, with
  line numbers on demand (`LoadedDocument.line_of`)
- `locate`: the one source locator, from a rendered object and a field path to a line
- `workloads`: the one pod-template walker (where a kind keeps its pods and containers)
"""
