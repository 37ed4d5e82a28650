"""API routers; each module exposes ``router``."""
