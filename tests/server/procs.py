"""Run ``python -m hs`` as a real subprocess against a generated config."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from hs.config import generate_config
from hs.storage.database import DatabaseConfig

REPO = Path(__file__).resolve().parents[2]
SERVER_NAME = "proc.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env() -> dict[str, str]:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    return environ


def write_config(tmp: Path, database_config: DatabaseConfig, **overrides: Any) -> tuple[Path, int]:
    """A generated config edited to use this test's database and a free port."""
    port = free_port()
    path = generate_config(SERVER_NAME, tmp / "homeserver.yaml", port=port)
    data = yaml.safe_load(path.read_text())
    if database_config.dialect == "sqlite":
        data["database"] = {"name": "sqlite3", "args": {"database": database_config.sqlite_path}}
    else:
        data["database"] = {"name": "psycopg2", "args": {
            "user": database_config.user, "password": database_config.password,
            "database": database_config.database, "host": database_config.host,
            "port": database_config.port, "cp_min": 1, "cp_max": 5}}
    data.update({"enable_registration": True, "enable_registration_without_verification": True,
                 "rc_enabled": False})
    data.update(overrides)
    path.write_text(yaml.safe_dump(data))
    return path, port


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hs", *args], env=env(), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


class ServerProcess:
    def __init__(self, config_path: Path, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(config_path.parent / f"server-{port}-{time.monotonic_ns()}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "hs", "run", "-c", str(config_path)],
                                     env=env(), cwd=REPO, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"server did not start:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()
