"""Backfills: history read from outside systems' APIs, fed through the one ingest path."""
