"""pytest plugin: a real, throwaway PostgreSQL server for the test session.

``pg_server`` (session) starts one with initdb + pg_ctl in a temporary directory, on a free
loopback port with its unix socket inside that directory, fsync off and trust auth - or uses
the server in ``HS_TEST_POSTGRES_DSN``. ``fresh_pg_database`` gives each test a new empty
database; ``database_config`` runs a test once on SQLite and once on PostgreSQL.

A missing PostgreSQL fails the run (CI installs it; skipping would hide failures) unless
``HS_TEST_SKIP_POSTGRES=1``. initdb refuses to run as root, so as root the server runs as the
``postgres`` system user (created if missing) via runuser/su.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hs.storage.database import DatabaseConfig

SKIP_POSTGRES = os.environ.get("HS_TEST_SKIP_POSTGRES", "") not in ("", "0")
_PG_BIN_CANDIDATES = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin",
                      "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/14/bin")
_SERVICE_USER = "postgres"
#: File in a cluster's directory naming the pid of the test session that owns it.
_OWNER_FILE = "owner.pid"


@dataclass
class PgServer:
    """A reachable PostgreSQL server where tests may create and drop databases."""

    host: str
    port: int
    user: str
    password: str | None
    admin_database: str
    _counter: itertools.count[int]

    def dsn(self, database: str) -> str:
        auth = self.user if self.password is None else f"{self.user}:{self.password}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{database}"

    def config(self, database: str, **overrides: object) -> DatabaseConfig:
        kwargs: dict[str, object] = {
            "dialect": "postgres", "host": self.host, "port": self.port, "user": self.user,
            "password": self.password, "database": database, "pool_min": 1, "pool_max": 5,
        }
        kwargs.update(overrides)
        return DatabaseConfig(**kwargs)  # type: ignore[arg-type]

    def _admin(self, *statements: str) -> None:
        asyncio.run(self._admin_async(statements))

    async def _admin_async(self, statements: tuple[str, ...]) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn(self.admin_database))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def create_database(self) -> str:
        name = f"hs_test_{os.getpid()}_{next(self._counter)}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in _PG_BIN_CANDIDATES:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scratch_dir() -> str | None:
    """A RAM-backed directory when there is one: creating a database per test is I/O bound."""
    shm = Path("/dev/shm")
    if os.environ.get("HS_TEST_PG_ON_DISK") or not (shm.is_dir() and os.access(shm, os.W_OK)):
        return None
    return str(shm)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_orphans(pg_ctl: str) -> None:
    """Stop and delete clusters left by test sessions that were killed before cleaning up."""
    for root in Path(_scratch_dir() or tempfile.gettempdir()).glob("hs-pg-*"):
        try:
            owner = int((root / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being set up
        if _pid_alive(owner):
            continue
        if (root / "data" / "postmaster.pid").exists():
            subprocess.run(
                _as_service_user([pg_ctl, "-D", str(root / "data"), "-m", "immediate", "stop"]),
                capture_output=True, timeout=60, check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def _ensure_service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or shutil.which("adduser")
    if useradd is None:
        raise RuntimeError("running as root, no 'postgres' user, and no useradd to create one")
    args = [useradd, "--system", "--no-create-home", "--shell", "/bin/sh", _SERVICE_USER]
    if os.path.basename(useradd) == "adduser":
        args = [useradd, "--system", "--no-create-home", "--group", _SERVICE_USER]
    subprocess.run(args, check=True, capture_output=True)
    return pwd.getpwnam(_SERVICE_USER)


def _as_service_user(cmd: list[str]) -> list[str]:
    """``cmd`` wrapped so it runs unprivileged when we are root."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", _SERVICE_USER, "--", *cmd]
    su = shutil.which("su")
    if su is None:
        raise RuntimeError("running as root without runuser or su to drop privileges")
    import shlex

    return [su, "-s", "/bin/sh", _SERVICE_USER, "-c", shlex.join(cmd)]


class _LocalCluster:
    """A cluster in a temporary directory, owned by whoever runs the server."""

    def __init__(self) -> None:
        initdb, pg_ctl = _find_bin("initdb"), _find_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("initdb/pg_ctl not found")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        _reap_orphans(self.pg_ctl)
        self.root = Path(tempfile.mkdtemp(prefix="hs-pg-", dir=_scratch_dir()))
        (self.root / _OWNER_FILE).write_text(str(os.getpid()))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        if os.geteuid() == 0:
            user = _ensure_service_user()
            os.chown(self.root, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o700)

    def _run(self, cmd: list[str], timeout: float = 120) -> None:
        res = subprocess.run(
            _as_service_user(cmd), capture_output=True, text=True, timeout=timeout,
            cwd=self.root,
        )
        if res.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n{log}"
            )

    def start(self) -> None:
        self._run([self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--locale=C", "--no-sync"])
        options = " ".join([
            "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={self.root}",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c max_connections=200", "-c shared_buffers=32MB",
            "-c wal_level=minimal", "-c max_wal_senders=0",
        ])
        for _attempt in range(5):  # another process may grab the port between probe and bind
            self.port = _free_port()
            try:
                self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w",
                           "-t", "60", "-o", f"{options} -p {self.port}", "start"])
                return
            except RuntimeError:
                if "could not bind" not in (self.log.read_text(errors="replace")
                                            if self.log.exists() else ""):
                    raise
                time.sleep(0.2)
        raise RuntimeError("could not find a free port for PostgreSQL")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                      timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def _server_from_dsn(dsn: str) -> PgServer:
    parts = urlsplit(dsn)
    admin_db = parts.path.lstrip("/") or "postgres"
    return PgServer(
        host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
        user=parts.username or "postgres", password=parts.password,
        admin_database=admin_db, _counter=itertools.count(),
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (see the module docstring)."""
    dsn = os.environ.get("HS_TEST_POSTGRES_DSN")
    if dsn:
        yield _server_from_dsn(dsn)
        return
    if SKIP_POSTGRES:
        pytest.skip("HS_TEST_SKIP_POSTGRES=1")
    if _find_bin("initdb") is None:
        pytest.fail(
            "PostgreSQL is required for these tests: install it (initdb/pg_ctl on PATH or in "
            "/usr/lib/postgresql/*/bin), set HS_TEST_POSTGRES_DSN to an existing server, or set "
            "HS_TEST_SKIP_POSTGRES=1 to skip the PostgreSQL half deliberately.",
            pytrace=False,
        )
    cluster = _LocalCluster()
    try:
        cluster.start()
        yield PgServer(host="127.0.0.1", port=cluster.port, user="postgres", password=None,
                       admin_database="postgres", _counter=itertools.count())
    finally:
        cluster.stop()


@pytest.fixture
def fresh_pg_database(pg_server: PgServer) -> Iterator[str]:
    """The name of a new, empty database on ``pg_server``, dropped after the test."""
    name = pg_server.create_database()
    try:
        yield name
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def fresh_pg_config(pg_server: PgServer, fresh_pg_database: str) -> DatabaseConfig:
    """A ``DatabaseConfig`` for ``fresh_pg_database``."""
    return pg_server.config(fresh_pg_database)


@pytest.fixture(params=["sqlite", "postgres"])
def database_config(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseConfig:
    """A config for an empty database, once per dialect."""
    if request.param == "sqlite":
        return DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp_path / "hs.db"))
    if SKIP_POSTGRES and not os.environ.get("HS_TEST_POSTGRES_DSN"):
        pytest.skip("HS_TEST_SKIP_POSTGRES=1")
    config: DatabaseConfig = request.getfixturevalue("fresh_pg_config")
    return config

