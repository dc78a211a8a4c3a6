"""Outrider tracker service."""
