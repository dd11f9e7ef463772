"""Small helpers shared by tests (not fixtures)."""
import socket


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now (for gloo)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
