"""Start and stop real homeservers and PostgreSQL clusters for benchmarks and interop tests.

Reusable pieces, no benchmark logic:

* :class:`PrivatePostgres` - a throwaway PostgreSQL cluster (initdb + pg_ctl) in a temp dir
  on a free loopback port; as root it runs as the ``postgres`` system user, since initdb
  refuses root.
* :class:`ServerProcess` - a child process that is waited on until an HTTP URL answers, and
  is always stopped (SIGTERM, then SIGKILL) by ``stop()``, ``with`` or an atexit hook.
* :class:`SynapseServer` - installs matrix-synapse into its own venv when missing, writes a
  config for 127.0.0.1 with open registration, rate limits and presence off, no federation,
  and runs ``python -m synapse.app.homeserver``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SYNAPSE_VENV = Path(os.environ.get(
    "HS_BENCH_SYNAPSE_VENV", str(Path(__file__).resolve().parent.parent / ".venv-synapse")))
SYNAPSE_REQUIREMENT = os.environ.get("HS_BENCH_SYNAPSE_REQ", "matrix-synapse[postgres]")
_PG_USER = "postgres"
_LIVE: set[ServerProcess] = set()
_PG_LIVE: set[PrivatePostgres] = set()

#: Every ``rc_*`` key Synapse knows, as (key, nested sub-keys or None). Unknown keys are ignored
#: by Synapse, so listing a newer key is harmless.
_SYNAPSE_RC_KEYS: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("rc_message", None), ("rc_registration", None), ("rc_registration_token_validity", None),
    ("rc_login", ("address", "account", "failed_attempts")), ("rc_joins", ("local", "remote")),
    ("rc_joins_per_room", None), ("rc_invites", ("per_room", "per_user", "per_issuer")),
    ("rc_3pid_validation", None), ("rc_admin_redaction", None), ("rc_room_creation", None),
    ("rc_reports", None), ("rc_media_create", None), ("rc_presence", ("per_user",)),
    ("rc_delayed_event_mgmt", None), ("rc_key_requests", None),
)
_UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None, *,
              context: ssl.SSLContext | None = None, log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` dies meanwhile."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before {url} answered"
                               + (f"\n{tail(log)}" if log else ""))
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s (last error: {last})"
                       + (f"\n{tail(log)}" if log else ""))


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- PostgreSQL ---------------------------------------------------------------------------

def _as_pg_user(cmd: list[str]) -> list[str]:
    """Wrap ``cmd`` to run as the postgres system user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam(_PG_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise RuntimeError("running as root without a 'postgres' user or useradd") from None
        subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/bin/sh", _PG_USER],
                       check=True)
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", _PG_USER, "--", *cmd]
    return ["su", _PG_USER, "-s", "/bin/sh", "-c", " ".join(cmd)]


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for version in ("17", "16", "15", "14"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
        if candidate.exists():
            return str(candidate)
    raise RuntimeError(f"{name} not found: install PostgreSQL server binaries")


@dataclass(eq=False)
class PrivatePostgres:
    """A PostgreSQL cluster of our own, trust auth on 127.0.0.1, fsync off; ``stop()`` wipes it."""

    port: int = 0
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hs-bench-pg-")))
    user: str = "postgres"
    host: str = "127.0.0.1"

    def start(self) -> PrivatePostgres:
        self.port = self.port or free_port()
        data, log = self.root / "data", self.root / "pg.log"
        if os.geteuid() == 0:
            _as_pg_user(["true"])  # creates the user when missing
            info = pwd.getpwnam(_PG_USER)
            os.chown(self.root, info.pw_uid, info.pw_gid)
        os.chmod(self.root, 0o755)
        subprocess.run(_as_pg_user([_pg_bin("initdb"), "-D", str(data), "-U", self.user,
                                    "--auth=trust", "--encoding=UTF8", "--locale=C"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        # Investigation only (e.g. "-c log_min_duration_statement=5"): same for both targets.
        opts += " " + os.environ.get("HS_BENCH_PG_OPTIONS", "")
        _PG_LIVE.add(self)
        result = subprocess.run(_as_pg_user([_pg_bin("pg_ctl"), "-D", str(data), "-l", str(log),
                                             "-o", opts, "-w", "-t", "60", "start"]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if result.returncode != 0:
            self.stop()
            raise RuntimeError(f"pg_ctl start failed: {result.stderr.decode()}\n{tail(log)}")
        return self

    def create_database(self, name: str) -> str:
        """A new database with C collation (Synapse refuses any other)."""
        subprocess.run(_as_pg_user([
            "psql", "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-q", "-c",
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
            "LC_COLLATE 'C' LC_CTYPE 'C'"]), check=True, stdout=subprocess.DEVNULL)
        return name

    def postmaster_pid(self) -> int | None:
        """PID of the postmaster (for CPU/RSS accounting of the database side)."""
        try:
            return int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_pg_user([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate",
                                        "-w", "-t", "30", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.root, ignore_errors=True)
        _PG_LIVE.discard(self)

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- generic server process ---------------------------------------------------------------

@dataclass(eq=False)
class ServerProcess:
    """A homeserver child process with its own process group and a log file."""

    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_url: str, timeout: float = 120.0) -> None:
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                                         start_new_session=True)
        finally:
            log.close()
        _LIVE.add(self)
        try:
            wait_http(ready_url, timeout, self.proc)
        except BaseException as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n--- log tail ---\n{tail(self.log_path)}") from None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("server not started")
        return self.proc.pid

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL after ``grace`` seconds."""
        proc, self.proc = self.proc, None
        _LIVE.discard(self)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@atexit.register
def _cleanup() -> None:
    """Never leave a server or cluster behind, whatever way the interpreter exits."""
    for server in list(_LIVE):
        server.stop(grace=5)
    for cluster in list(_PG_LIVE):
        cluster.stop()


# -- Synapse ------------------------------------------------------------------------------

def ensure_synapse_venv(venv: Path = DEFAULT_SYNAPSE_VENV, *, postgres: bool = False) -> Path:
    """Python of a venv holding matrix-synapse (and psycopg2 if needed); created when missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = "import synapse" + ("; import psycopg2" if postgres else "")
    if subprocess.run([str(python), "-c", probe], capture_output=True).returncode != 0:
        print(f"installing {SYNAPSE_REQUIREMENT} into {venv} ...", file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "-q", SYNAPSE_REQUIREMENT],
                       check=True)
    return python


def synapse_version(python: Path) -> str:
    out = subprocess.run([str(python), "-c", "import synapse; print(synapse.__version__)"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def patch_synapse_config(config: dict[str, Any], *, port: int, data_dir: Path,
                         database: dict[str, Any], log_config: Path) -> dict[str, Any]:
    """Make a generated homeserver.yaml fit for local benchmarking (pure: returns ``config``)."""
    config["listeners"] = [{
        "port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
        "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}],
    }]
    config["database"] = database
    config["log_config"] = str(log_config)
    config["media_store_path"] = str(data_dir / "media_store")
    config["enable_registration"] = True
    config["enable_registration_without_verification"] = True
    config["report_stats"] = False
    config["presence"] = {"enabled": False}
    config["federation_domain_whitelist"] = []
    config["trusted_key_servers"] = []
    config["suppress_key_server_warning"] = True
    config["enable_metrics"] = False
    for key, nested in _SYNAPSE_RC_KEYS:
        config[key] = {sub: dict(_UNLIMITED) for sub in nested} if nested else dict(_UNLIMITED)
    return config


def sqlite_database(path: Path) -> dict[str, Any]:
    return {"name": "sqlite3", "args": {"database": str(path)}}


def postgres_database(pg: PrivatePostgres, name: str) -> dict[str, Any]:
    return {"name": "psycopg2", "args": {"user": pg.user, "host": pg.host, "port": pg.port,
                                         "database": name, "cp_min": 5, "cp_max": 10}}


_LOG_CONFIG = """\
version: 1
formatters:
  plain: {format: '%(asctime)s %(name)s %(levelname)s %(message)s'}
handlers:
  file: {class: logging.FileHandler, formatter: plain, filename: '{LOG}'}
root: {level: WARNING, handlers: [file]}
disable_existing_loggers: false
"""


class SynapseServer:
    """One Synapse on 127.0.0.1:<free port> with SQLite or a private PostgreSQL.

    ``with SynapseServer(db="postgres") as s: s.base_url, s.pid``. Everything lives in a temp
    dir that is removed on stop.
    """

    def __init__(self, db: str = "sqlite", *, venv: Path = DEFAULT_SYNAPSE_VENV,
                 server_name: str | None = None, workdir: Path | None = None) -> None:
        if db not in ("sqlite", "postgres"):
            raise ValueError(f"db must be sqlite or postgres, not {db!r}")
        self.db, self.venv = db, venv
        self.port = free_port()
        self.server_name = server_name or f"127.0.0.1:{self.port}"
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="hs-bench-synapse-"))
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.pg: PrivatePostgres | None = None
        self.process: ServerProcess | None = None
        self.version = ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def write_config(self, python: Path) -> Path:
        """Generate a config + signing key with Synapse itself, then patch it."""
        config_path = self.workdir / "homeserver.yaml"
        subprocess.run([str(python), "-m", "synapse.app.homeserver", "--generate-config",
                        "--server-name", self.server_name, "--config-path", str(config_path),
                        "--data-directory", str(self.workdir), "--report-stats=no"],
                       check=True, capture_output=True, cwd=self.workdir)
        log_config = self.workdir / "log.yaml"
        log_config.write_text(_LOG_CONFIG.replace("{LOG}", str(self.workdir / "homeserver.log")))
        if self.db == "postgres":
            self.pg = PrivatePostgres().start()
            database = postgres_database(self.pg, self.pg.create_database("synapse"))
        else:
            database = sqlite_database(self.workdir / "homeserver.db")
        config = yaml.safe_load(config_path.read_text())
        patch_synapse_config(config, port=self.port, data_dir=self.workdir, database=database,
                             log_config=log_config)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        return config_path

    def start(self, timeout: float = 180.0) -> SynapseServer:
        try:
            python = ensure_synapse_venv(self.venv, postgres=self.db == "postgres")
            self.version = synapse_version(python)
            config_path = self.write_config(python)
            self.process = ServerProcess(
                [str(python), "-m", "synapse.app.homeserver", "-c", str(config_path)],
                self.workdir / "stdout.log", cwd=self.workdir)
            self.process.start(f"{self.base_url}/_matrix/client/versions", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        if self.pg is not None:
            self.pg.stop()
            self.pg = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SynapseServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
