"""Gatewatch: delivery metrics, canary analysis and deployment gates (the CLI lives in gatewatch.cli)."""

__version__ = "0.1.0"
