"""Package fixtures: one real Synapse and one hs federating over TLS on 127.0.0.1.

Gate: ``HS_INTEROP=1`` runs these tests, ``HS_INTEROP=0`` skips them; unset, they run when the
Synapse venv (``HS_BENCH_SYNAPSE_VENV``, default ``.venv-synapse``, made by
ci/synapse_venv.sh) exists or
``HS_INTEROP_INSTALL=1`` allows the fixture to create it. ``HS_INTEROP_KEEP=1`` keeps the
servers' work dirs (configs, logs, databases) for inspection. ``HS_INTEROP_CONTROL=1`` runs
the same tests with a second Synapse in hs's place, to check the tests themselves.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from bench.synapse_harness import DEFAULT_SYNAPSE_VENV
from tests.interop.client import Client, wait_for
from tests.interop.synapse_fed import FedHs, FedSynapse, federating_pair

ROOM_VERSIONS = ("10", "12")
INTEROP_DIR = os.path.dirname(__file__)


def _enabled() -> tuple[bool, str]:
    flag = os.environ.get("HS_INTEROP", "")
    if flag == "0":
        return False, "HS_INTEROP=0"
    if flag not in ("", "0"):
        return True, ""
    if (DEFAULT_SYNAPSE_VENV / "bin" / "python").exists():
        return True, ""
    if os.environ.get("HS_INTEROP_INSTALL", "") not in ("", "0"):
        return True, ""
    return False, (f"no Synapse venv at {DEFAULT_SYNAPSE_VENV}; set HS_INTEROP=1 or "
                   "HS_INTEROP_INSTALL=1 to create it")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the partition tests (they restart hs) right after the other interop tests."""
    ours = [i for i, item in enumerate(items) if str(item.path).startswith(INTEROP_DIR)]
    if not ours:
        return
    partition = [items[i] for i in ours if "partition" in items[i].nodeid]
    rest = [item for item in items if item not in partition]
    last = max((k for k, item in enumerate(rest) if str(item.path).startswith(INTEROP_DIR)),
               default=len(rest) - 1)
    items[:] = rest[:last + 1] + partition + rest[last + 1:]


@pytest.fixture(scope="package")
def servers() -> Iterator[tuple[FedSynapse, FedHs]]:
    enabled, reason = _enabled()
    if not enabled:
        pytest.skip(reason)
    control = os.environ.get("HS_INTEROP_CONTROL", "") not in ("", "0")
    with federating_pair(control=control) as pair:
        yield pair


@pytest.fixture()
def synapse(servers: tuple[FedSynapse, FedHs]) -> FedSynapse:
    return servers[0]


@pytest.fixture()
def hs(servers: tuple[FedSynapse, FedHs], request: pytest.FixtureRequest) -> Iterator[FedHs]:
    """The hs server, restarted first if an earlier test left it stopped; logs on failure."""
    server = servers[1]
    if not server.running():
        server.start()
    yield server
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(server.logs(40))
        print(servers[0].logs(40))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[Any]) -> Generator[None, Any, Any]:
    """Remember the call-phase report so the ``hs`` fixture can dump logs on failure."""
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


@pytest.fixture(params=ROOM_VERSIONS, ids=[f"v{v}" for v in ROOM_VERSIONS])
def room_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def shared_room(host: Client, guest: Client, room_version: str, **create: Any) -> str:
    """A public room created by ``host``, joined by ``guest`` over federation; both sides see
    the join before this returns."""
    room_id = host.create_room(room_version, **create)
    joined = guest.join(room_id, via=[host.server_name])
    assert joined == room_id
    wait_for(lambda: host.membership(room_id, guest.user_id) == "join",
             f"{host.server_name} to see {guest.user_id} joined")
    wait_for(lambda: guest.membership(room_id, host.user_id) == "join",
             f"{guest.server_name} to see {host.user_id} joined")
    return room_id
