"""Free TCP ports on 127.0.0.1, for the demo, the test suite and the benchmarks."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_pair(attempts: int = 50) -> int:
    """A port p such that p and p + 1 are both free (a Kafka broker and its controller listener)."""
    for _ in range(attempts):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no pair of free ports found on 127.0.0.1")
