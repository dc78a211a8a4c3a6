"""Outrider's Grafana dashboards as code: `uv run python -m dashboards.src` writes them to dashboards/*.json."""
