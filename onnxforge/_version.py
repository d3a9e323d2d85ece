"""The package version, in a module of its own so that any level (the graph builder stamps it on every
model as ``producer_version``) can read it without importing the package root."""
from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
