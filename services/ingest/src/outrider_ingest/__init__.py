"""Outrider ingest service."""
