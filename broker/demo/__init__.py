"""Demo and test-only helpers (a local AWS stand-in); never imported by the production app."""
