"""meshready: render, validate, analyze and diff the Kustomize targets of this repository."""

__version__ = "0.1.0"
