"""The shared kernel of Outrider: what two services must agree on, and nothing that imports a service."""
