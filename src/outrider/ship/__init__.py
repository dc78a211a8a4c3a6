"""`outrider ship`: tail GitLab logs in a customer environment and ship them to Outrider's ingest service."""
