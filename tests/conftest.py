"""Shared fixtures: the spec's test vectors and both twins of each accelerator."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import ipaddress
import json
import os
import socket
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# The PostgreSQL harness (a real server started by the tests) - see tests/pg_harness.py.
pytest_plugins = ["pg_harness"]

#: Host names tests may resolve: anything else would leave the machine (or wait on DNS).
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_real_getaddrinfo = socket.getaddrinfo


def _loopback_only_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """Network tests use loopback only: a lookup of any other name fails at once, the way
    an unknown name does, instead of asking the machine's resolver."""
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name.lower().rstrip(".") not in _LOOPBACK_NAMES:
        try:
            literal = ipaddress.ip_address(name.strip("[]").split("%")[0])
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: not resolved in tests") from None
        if not literal.is_loopback and not literal.is_unspecified:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: not loopback")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only_getaddrinfo

#: Upper bound for one ``async def`` test; a hung network test fails instead of stalling CI.
ASYNC_TEST_TIMEOUT_S = 120

REPO = Path(__file__).resolve().parent.parent
SPEC = Path(os.environ.get("HS_SPEC_DIR", REPO.parent / "shared" / "spec"))

#: In CI (HS_REQUIRE_EXTENSIONS=1) a missing compiled twin is a failure, not a skip.
REQUIRE_EXTENSIONS = os.environ.get("HS_REQUIRE_EXTENSIONS", "") not in ("", "0")
NO_EXTENSIONS = os.environ.get("HS_NO_EXTENSIONS", "") not in ("", "0")


def twins(name: str) -> list[ModuleType]:
    """Both implementations of ``hs._native.<name>``, for parametrizing tests.

    The Cython twin is skipped when it is not built (or HS_NO_EXTENSIONS is set), unless
    HS_REQUIRE_EXTENSIONS says it must be there.
    """
    mods = [importlib.import_module(f"hs._native._{name}_py")]
    if not NO_EXTENSIONS:
        try:
            mods.append(importlib.import_module(f"hs._native._{name}_c"))
        except ImportError:
            if REQUIRE_EXTENSIONS:
                raise
    return mods


def twin_params(name: str) -> list[object]:
    mods = twins(name)
    params = [pytest.param(m, id=m.__name__.rsplit("_", 1)[-1]) for m in mods]
    if len(mods) == 1:
        params.append(
            pytest.param(None, id="c", marks=pytest.mark.skip(reason=f"_{name}_c not built"))
        )
    return params


@pytest.fixture(scope="session")
def spec_vectors() -> list[dict]:
    path = SPEC / "test-vectors.json"
    if not path.exists():
        pytest.skip(f"spec test vectors not found at {path}")
    return json.loads(path.read_text())


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on a fresh event loop each (no pytest-asyncio dependency)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), timeout=ASYNC_TEST_TIMEOUT_S))
    return True
