"""Outrider notifier service."""
