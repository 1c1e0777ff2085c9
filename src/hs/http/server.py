"""Run the aiohttp application on uvloop with the configured listeners; stop gracefully.

SIGTERM/SIGINT: stop accepting connections, let in-flight requests finish (bounded by
``shutdown_timeout``), then run the app's cleanup (which closes the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from hs.config import HomeserverConfig, ListenerConfig

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 10.0


def _ssl_context(config: HomeserverConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert config.tls_certificate_path and config.tls_private_key_path
    ctx.load_cert_chain(config.tls_certificate_path, config.tls_private_key_path)
    return ctx


async def serve(config: HomeserverConfig,
                apps: list[tuple[ListenerConfig, web.Application]],
                on_stopped: Callable[[], Awaitable[None]]) -> None:
    """Serve every listener until SIGTERM/SIGINT, drain in-flight requests, then ``on_stopped``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    try:
        for listener, app in apps:
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S,
                                   handle_signals=False)
            await runner.setup()
            runners.append(runner)
            ctx = _ssl_context(config) if listener.tls else None
            for address in listener.bind_addresses:
                site = web.TCPSite(runner, address, listener.port, ssl_context=ctx,
                                   reuse_address=True)
                await site.start()
                scheme = "https" if ctx else "http"
                host = f"[{address}]" if ":" in address else address
                logger.info("Listening on %s://%s:%d (%s)", scheme, host, listener.port,
                            ", ".join(sorted(listener.resources)))
        logger.info("Server %s ready", config.server_name)
        await stop.wait()
        logger.info("Shutting down: no new connections, finishing in-flight requests")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        # Stop every listener first so nothing new arrives, then drain each.
        await asyncio.gather(*(runner.cleanup() for runner in runners))
        await on_stopped()
        logger.info("Shutdown complete")
