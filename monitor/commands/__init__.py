"""One module per ``monitor`` command; each exposes ``register(app)``."""
