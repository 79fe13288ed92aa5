"""codepipeline payloads (being written)."""
from __future__ import annotations

NAME = "codepipeline"


def detect(payload, hint=None):
    return None


def event_id(kind, payload):
    return None


def normalise(kind, payload, config):
    return []
