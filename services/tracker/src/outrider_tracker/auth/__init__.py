"""Who may call the tracker API: bearer tokens with a role (admin > editor > viewer)."""
