"""Make every network connection fail: imported by the test session and by CLI subprocesses.

Any attempt to resolve a host name or open an internet socket raises ``NetworkBlocked``, so a
test that passes proves the code under test made no network call. Unix sockets stay allowed
(multiprocessing uses them).
"""

from __future__ import annotations

import os
import socket

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


class NetworkBlocked(RuntimeError):
    pass


_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise NetworkBlocked(f"network access attempted during tests: connect({address!r})")
    return _real_connect(self, address)


def _blocked(*args: object, **kwargs: object) -> None:
    raise NetworkBlocked(f"network access attempted during tests: getaddrinfo{args!r}")


def install() -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.getaddrinfo = _blocked  # type: ignore[assignment]
    socket.create_connection = _blocked  # type: ignore[assignment]


install()
