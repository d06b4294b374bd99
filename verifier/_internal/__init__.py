"""Implementation modules of :mod:`verifier`; not a public API."""
