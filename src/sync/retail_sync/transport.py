"""The HTTP(S) client the robot talks to the platform with (uploads and downlink alike)."""
from __future__ import annotations

import ssl

import httpx


def platform_client(token: str, ca_file: str = '', timeout_s: float = 10.0,
                    headers: dict[str, str] | None = None) -> httpx.Client:
    """A client carrying the bearer token; https is verified against `ca_file` when given
    (a store's platform may use a private CA), else against the system's CAs."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    return httpx.Client(timeout=timeout_s, verify=verify,
                        headers={'Authorization': f'Bearer {token}', **(headers or {})})


def set_token(client: httpx.Client, token: str) -> None:
    client.headers['Authorization'] = f'Bearer {token}'
