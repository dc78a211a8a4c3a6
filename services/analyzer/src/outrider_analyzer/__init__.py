"""Outrider analyzer service."""
