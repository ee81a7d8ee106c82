"""Listening sockets for the HTTP endpoints, reading BIND_HOST as grpc core does.

asyncio (hence aiohttp's TCPSite) always sets IPV6_V6ONLY on an IPv6 socket, so binding
`::` answers on IPv6 only and IPv4 clients (most pod networks) are refused. grpc core
binds `[::]` dual-stack. `dual_stack_socket` gives the HTTP endpoints the same: the IPv6
wildcard with IPV6_V6ONLY off takes IPv4 connections too (as IPv4-mapped addresses).
"""

from __future__ import annotations

import socket

IPV4_WILDCARD = "0.0.0.0"


def is_any_address(host: str) -> bool:
    """Whether BIND_HOST means every address of both families: "", "::" or "[::]"."""
    return host.strip().strip("[]") in ("", "::")


def dual_stack_socket(port: int) -> socket.socket | None:
    """A TCP socket bound to [::]:`port` that also accepts IPv4; None without IPv6.

    The socket is bound, not yet listening (the server calls listen). Port 0 picks a
    free port, the same for both families. An address in use raises OSError.
    """
    if not socket.has_ipv6:
        return None
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:  # the kernel has no IPv6 (EAFNOSUPPORT)
        return None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
    except OSError:
        sock.close()
        raise
    return sock


def bound_socket(bind_host: str, port: int) -> socket.socket:
    """A bound TCP socket for BIND_HOST:`port` (not yet listening), for servers that take one.

    `[::]` or empty: the dual-stack wildcard (IPv4 only on a host without IPv6); any other
    host as given (`0.0.0.0` IPv4 only, `::1` that address only).
    """
    host = IPV4_WILDCARD if is_any_address(bind_host) else bind_host.strip().strip("[]")
    if is_any_address(bind_host):
        sock = dual_stack_socket(port)
        if sock is not None:
            return sock
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
