"""Loopback ports for the servers the tests start. A port is handed out at
most once per process: asking the kernel for a free port and closing it
lets the next ask return the same one, and two servers told the same port
fail in ways that look like protocol errors (an HTTP client reading a
DICOM A-ABORT)."""
import socket

_handed_out = set()


def free_port():
    """A loopback TCP port free now and never returned before by this process."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
