"""Synapse-compatible admin API (``/_synapse/admin``), so existing admin tooling keeps working."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    from hs.api.admin import register, registration_tokens, server, users

    register.add_routes(app)
    registration_tokens.add_routes(app)
    server.add_routes(app)
    users.add_routes(app)
