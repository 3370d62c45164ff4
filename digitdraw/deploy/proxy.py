"""HAProxy in front of the app replicas: its configuration, and where Debian puts it.

Streamlit keeps each browser session in the memory of the replica that
serves its WebSocket, and its uploads and images there too, so every
request of one browser must reach the same replica: HAProxy inserts a cookie
naming the replica on the first response (the page), and the browser sends
it back with the WebSocket and every file request. New browsers are spread
round robin. A replica that fails its health check, or refuses a
connection, loses its browsers to another (``option redispatch``): they
reconnect there, as a new Streamlit session, with the drawings they kept
safe in the database. WebSockets need no option in HAProxy's HTTP mode;
``timeout tunnel`` keeps an idle one open for a lesson's length.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from digitdraw.deploy.network import checked_host

HAPROXY_PATHS = ("/usr/sbin/haproxy",)
REPLICA_COOKIE = "digitdraw_replica"
HEALTH_PATH = "/_stcore/health"
MAX_CONNECTIONS = 2000  # Each phone holds one WebSocket and a few short requests.


def haproxy_binary() -> str:
    """Debian's ``haproxy``; FileNotFoundError saying how to install it where it is missing."""
    for candidate in (*HAPROXY_PATHS, shutil.which("haproxy")):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError("HAProxy not found: install it with 'apt-get install haproxy'")


def replica_name(index: int) -> str:
    """The name HAProxy and its cookie give replica ``index`` (0-based): app1, app2, ..."""
    return f"app{index + 1}"


def haproxy_config(host: str, port: int, replica_ports: Sequence[int]) -> str:
    """HAProxy's configuration: listen on ``host:port`` and share browsers among the replicas on
    127.0.0.1 at ``replica_ports``, each browser sticking to one."""
    if not replica_ports:
        raise ValueError("a proxy needs at least one replica to send browsers to")
    checked_host(host)  # Written into the configuration: an address, never a line of it.
    servers = "\n".join(
        f"    server {replica_name(index)} 127.0.0.1:{replica_port} cookie {replica_name(index)} "
        "check inter 1s fall 2 rise 2"
        for index, replica_port in enumerate(replica_ports)
    )
    # noreuseport: a second proxy on the same port fails to start, rather than share its browsers. An IPv6
    # address binds unbracketed: HAProxy takes the port after its last colon.
    return f"""global
    maxconn {MAX_CONNECTIONS}
    noreuseport

defaults
    mode http
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 2h

frontend digitdraw
    bind {host}:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    cookie {REPLICA_COOKIE} insert indirect nocache httponly
    option httpchk GET {HEALTH_PATH}
{servers}
"""
