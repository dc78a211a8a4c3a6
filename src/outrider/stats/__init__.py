"""`outrider stats`: offline statistics of GitLab logs on the logparse Rust core."""
