"""Addresses and ports the cluster's parts listen on."""

from __future__ import annotations

import ipaddress
import socket

# Addresses that mean "every interface of this machine": the proxy's, for a classroom's phones.
EVERY_INTERFACE = ("0.0.0.0", "::")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def checked_host(host: str) -> str:
    """``host`` if it is an IP address (what the proxy binds to); ValueError otherwise."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"the host must be an IP address such as 127.0.0.1 or 0.0.0.0, not {host!r}"
        ) from None
    return host


def url_of(host: str, port: int) -> str:
    """The http URL of ``host:port``, as a browser on this machine opens it (brackets for IPv6)."""
    if host in EVERY_INTERFACE:
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port`` (or a part of it, for every interface) right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        # As HAProxy binds: a port whose last connections are still closing (TIME_WAIT) is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
