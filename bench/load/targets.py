"""Servers under test: Synapse and hs, each on SQLite or a private PostgreSQL.

A target is started once, exposes ``base_url``, ``pid`` (for /proc accounting) and
``db_pid`` (the PostgreSQL postmaster, or None), and is always stopped by ``stop()``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Protocol

import yaml

from bench.synapse_harness import (
    DEFAULT_SYNAPSE_VENV,
    PrivatePostgres,
    ServerProcess,
    SynapseServer,
    free_port,
    postgres_database,
    sqlite_database,
)

REPO = Path(__file__).resolve().parents[2]
#: hs rate-limit keys, all switched off with ``rc_enabled: false`` and made huge besides.
_HS_RC = ("rc_message", "rc_registration", "rc_joins", "rc_login", "rc_invites",
          "rc_room_creation", "rc_joins_per_room", "rc_presence")


class Target(Protocol):
    name: str
    db: str
    base_url: str
    version: str

    @property
    def pid(self) -> int: ...

    @property
    def db_pid(self) -> int | None: ...

    def start(self) -> Any: ...

    def stop(self) -> None: ...


class SynapseTarget:
    """matrix-synapse from its own venv (installed there when missing)."""

    name = "synapse"

    def __init__(self, db: str, venv: Path = DEFAULT_SYNAPSE_VENV) -> None:
        self.db = db
        self.server = SynapseServer(db=db, venv=venv)
        self.base_url = self.server.base_url
        self.version = ""

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def db_pid(self) -> int | None:
        return self.server.pg.postmaster_pid() if self.server.pg else None

    def start(self) -> SynapseTarget:
        self.server.start()
        self.version = self.server.version
        return self

    def stop(self) -> None:
        self.server.stop()


def patch_hs_config(config: dict[str, Any], database: dict[str, Any]) -> dict[str, Any]:
    """Make a generated hs config fit for benchmarking (pure: returns ``config``)."""
    config["database"] = database
    config["enable_registration"] = True
    config["enable_registration_without_verification"] = True
    config["rc_enabled"] = False
    unlimited = {"per_second": 1_000_000, "burst_count": 1_000_000}
    for key in _HS_RC:
        current = config.get(key)
        if isinstance(current, dict) and current and all(isinstance(v, dict)
                                                         for v in current.values()):
            config[key] = {sub: dict(unlimited) for sub in current}
        elif key in config:
            config[key] = dict(unlimited)
    config["presence"] = {"enabled": False}
    config["federation_domain_whitelist"] = []
    config["trusted_key_servers"] = []
    config["enable_metrics"] = False
    config["log_level"] = "WARNING"
    return config


def hs_command(venv: Path | None) -> tuple[list[str], dict[str, str]]:
    """argv prefix and environment to run hs: a venv's console script, else this checkout."""
    env = dict(os.environ)
    if venv is not None:
        script = venv / "bin" / "hs"
        if not script.exists():
            raise FileNotFoundError(f"{script} not found: install hs into {venv}")
        return [str(script)], env
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"),
                                                      env.get("PYTHONPATH", "")]))
    return [sys.executable, "-m", "hs"], env


def hs_version(argv: list[str], env: dict[str, str]) -> str:
    python = sys.executable if argv[0] == sys.executable else str(Path(argv[0]).parent / "python")
    out = subprocess.run([python, "-c", "import hs; print(hs.__version__)"], env=env,
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


class HsTarget:
    """hs via ``hs generate-config`` + ``hs run -c``."""

    name = "hs"

    def __init__(self, db: str, venv: Path | None = None) -> None:
        self.db, self.venv = db, venv
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="hs-bench-hs-"))
        self.pg: PrivatePostgres | None = None
        self.process: ServerProcess | None = None
        self.version = ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def db_pid(self) -> int | None:
        return self.pg.postmaster_pid() if self.pg else None

    def start(self) -> HsTarget:
        try:
            argv, env = hs_command(self.venv)
            self.version = hs_version(argv, env)
            config_path = self.workdir / "homeserver.yaml"
            subprocess.run([*argv, "generate-config", "--server-name", f"127.0.0.1:{self.port}",
                            "-c", str(config_path), "--port", str(self.port),
                            "--bind-address", "127.0.0.1"],
                           env=env, check=True, capture_output=True)
            if self.db == "postgres":
                self.pg = PrivatePostgres().start()
                database = postgres_database(self.pg, self.pg.create_database("hs"))
            else:
                database = sqlite_database(self.workdir / "homeserver.db")
            config = patch_hs_config(yaml.safe_load(config_path.read_text()), database)
            config_path.write_text(yaml.safe_dump(config, sort_keys=False))
            self.process = ServerProcess([*argv, "run", "-c", str(config_path)],
                                         self.workdir / "stdout.log", env=env, cwd=self.workdir)
            self.process.start(f"{self.base_url}/_matrix/client/versions", timeout=120)
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


def make_target(name: str, db: str, *, synapse_venv: Path = DEFAULT_SYNAPSE_VENV,
                hs_venv: Path | None = None) -> SynapseTarget | HsTarget:
    if name == "synapse":
        return SynapseTarget(db, synapse_venv)
    if name == "hs":
        return HsTarget(db, hs_venv)
    raise ValueError(f"unknown target {name!r}")
