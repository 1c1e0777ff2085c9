"""A real Synapse and a real hs federating with each other over TLS on 127.0.0.1.

Both servers are named by IP literals with explicit ports (``127.0.0.1:PORT``), so no DNS, SRV
or .well-known lookup happens; both listen with TLS on that port (one self-signed certificate
for 127.0.0.1, shared) and skip certificate verification for outbound federation. Registration
is open without verification and rate limits are off on both. Reuses the process and venv
helpers of ``bench/synapse_harness.py``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from bench.synapse_harness import (
    _LIVE,
    DEFAULT_SYNAPSE_VENV,
    ServerProcess,
    ensure_synapse_venv,
    free_port,
    patch_synapse_config,
    sqlite_database,
    synapse_version,
    tail,
    wait_http,
)

REPO = Path(__file__).resolve().parents[2]

#: Synapse federation client/sender knobs (synapse/config/federation.py) so a peer that was
#: down is retried within seconds, not minutes.
SYNAPSE_FEDERATION = {
    "client_timeout": "20s",
    "max_short_retry_delay": "1s",
    "max_long_retry_delay": "2s",
    "max_short_retries": 2,
    "max_long_retries": 3,
    "destination_min_retry_interval": "1s",
    "destination_retry_multiplier": 1.5,
    "destination_max_retry_interval": "3s",
}
#: Inbound federation rate limit (per remote server) effectively off.
SYNAPSE_RC_FEDERATION = {"window_size": 1000, "sleep_limit": 100_000, "sleep_delay": 1,
                         "reject_limit": 100_000, "concurrent": 1000}

_SYNAPSE_LOG = """\
version: 1
formatters:
  plain: {format: '%(asctime)s %(name)s %(levelname)s %(message)s'}
handlers:
  file: {class: logging.FileHandler, formatter: plain, filename: '{LOG}'}
loggers:
  synapse.storage.SQL: {level: WARNING}
  synapse.access: {level: WARNING}
root: {level: INFO, handlers: [file]}
disable_existing_loggers: false
"""


def insecure_ssl() -> ssl.SSLContext:
    """A client context accepting the self-signed test certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for IP 127.0.0.1 (and localhost) plus its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def wait_https(url: str, timeout: float, proc: subprocess.Popen[bytes] | None,
               log: Path) -> None:
    """Poll ``url`` (TLS, unverified) until 200; raise with the log tail on death/timeout."""
    wait_http(url, timeout, proc, context=insecure_ssl(), log=log)


class _Server:
    """Common start/stop of a TLS homeserver child process."""

    workdir: Path
    port: int
    process: ServerProcess | None = None

    @property
    def server_name(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    def _launch(self, argv: list[str], env: dict[str, str] | None, ready_path: str,
                timeout: float) -> None:
        self.process = ServerProcess(argv, self.workdir / "stdout.log", env=env, cwd=self.workdir)
        log = self.process.log_path.open("ab")
        try:
            self.process.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, env=env,
                                                 cwd=self.workdir, start_new_session=True)
        finally:
            log.close()
        _LIVE.add(self.process)  # the bench harness's atexit hook stops it whatever happens
        try:
            wait_https(self.base_url + ready_path, timeout, self.process.proc,
                       self.process.log_path)
        except BaseException:
            self.process.stop(grace=5)
            self.process = None
            raise

    def running(self) -> bool:
        return (self.process is not None and self.process.proc is not None
                and self.process.proc.poll() is None)

    def stop_process(self) -> None:
        if self.process is not None:
            self.process.stop(grace=10)
            self.process = None

    def logs(self, lines: int = 60) -> str:
        return f"--- {self.server_name} log ---\n{tail(self.log_path, lines)}"


class FedSynapse(_Server):
    """Synapse on https://127.0.0.1:PORT serving client + federation (+ keys), SQLite."""

    def __init__(self, cert: Path, key: Path, *, venv: Path = DEFAULT_SYNAPSE_VENV,
                 workdir: Path | None = None) -> None:
        self.cert, self.key, self.venv = cert, key, venv
        self.port = free_port()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="hs-interop-synapse-"))
        self.version = ""
        self.python: Path | None = None
        self.config: dict[str, Any] = {}

    @property
    def log_path(self) -> Path:
        return self.workdir / "homeserver.log"

    def write_config(self, python: Path) -> Path:
        config_path = self.workdir / "homeserver.yaml"
        subprocess.run([str(python), "-m", "synapse.app.homeserver", "--generate-config",
                        "--server-name", self.server_name, "--config-path", str(config_path),
                        "--data-directory", str(self.workdir), "--report-stats=no"],
                       check=True, capture_output=True, cwd=self.workdir)
        log_config = self.workdir / "log.yaml"
        log_config.write_text(_SYNAPSE_LOG.replace("{LOG}", str(self.log_path)))
        config = yaml.safe_load(config_path.read_text())
        patch_synapse_config(config, port=self.port, data_dir=self.workdir,
                             database=sqlite_database(self.workdir / "homeserver.db"),
                             log_config=log_config)
        config["listeners"] = [{
            "port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": True,
            "x_forwarded": False,
            "resources": [{"names": ["client", "federation", "keys"], "compress": False}],
        }]
        config.pop("federation_domain_whitelist", None)  # [] would block every server
        config.update({
            "tls_certificate_path": str(self.cert),
            "tls_private_key_path": str(self.key),
            "federation_verify_certificates": False,
            "ip_range_blacklist": [],
            "ip_range_whitelist": ["127.0.0.0/8"],
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation": dict(SYNAPSE_FEDERATION),
            "rc_federation": dict(SYNAPSE_RC_FEDERATION),
            "allow_public_rooms_over_federation": True,
            "presence": {"enabled": False},
            "require_auth_for_profile_requests": False,
            "allow_profile_lookup_over_federation": True,
            "allow_device_name_lookup_over_federation": True,
        })
        self.config = config
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        return config_path

    def start(self, timeout: float = 180.0) -> FedSynapse:
        """Start (or restart after ``stop_process``, keeping config and database)."""
        if self.python is None:
            self.python = ensure_synapse_venv(self.venv)
            self.version = synapse_version(self.python)
        config_path = self.workdir / "homeserver.yaml"
        if not self.config:
            config_path = self.write_config(self.python)
        self._launch([str(self.python), "-m", "synapse.app.homeserver", "-c", str(config_path)],
                     None, "/_matrix/client/versions", timeout)
        return self

    def stop(self) -> None:
        self.stop_process()
        if not os.environ.get("HS_INTEROP_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)


class FedHs(_Server):
    """hs (``python -m hs run``) on https://127.0.0.1:PORT, SQLite, federation over TLS."""

    def __init__(self, cert: Path, key: Path, *, workdir: Path | None = None) -> None:
        self.cert, self.key = cert, key
        self.port = free_port()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="hs-interop-hs-"))
        self.config_path = self.workdir / "homeserver.yaml"
        self.config: dict[str, Any] = {}

    @property
    def log_path(self) -> Path:
        return self.workdir / "stdout.log"

    def env(self) -> dict[str, str]:
        environ = dict(os.environ)
        src = os.environ.get("HS_INTEROP_HS_SRC", str(REPO / "src"))  # e.g. a snapshot
        environ["PYTHONPATH"] = os.pathsep.join([src, str(REPO)])
        return environ

    def write_config(self) -> Path:
        subprocess.run([sys.executable, "-m", "hs", "generate-config", "--server-name",
                        self.server_name, "-c", str(self.config_path), "--port", str(self.port)],
                       check=True, capture_output=True, env=self.env(), cwd=REPO, timeout=60)
        config = yaml.safe_load(self.config_path.read_text())
        config["listeners"] = [{
            "port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": True,
            "x_forwarded": False,
            "resources": [{"names": ["client", "federation", "keys", "health"]}],
        }]
        config.update({
            "tls_certificate_path": str(self.cert),
            "tls_private_key_path": str(self.key),
            "federation_verify_certificates": False,
            "ip_range_blacklist": [],
            "ip_range_whitelist": ["127.0.0.0/8"],
            "trusted_key_servers": [],
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "rc_enabled": False,
            "log_level": "INFO",
            "presence": {"enabled": False},
        })
        self.config = config
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        return self.config_path

    def start(self, timeout: float = 60.0) -> FedHs:
        if not self.config_path.exists():
            self.write_config()
        self._launch([sys.executable, "-m", "hs", "run", "-c", str(self.config_path)],
                     self.env(), "/health", timeout)
        return self

    def stop(self) -> None:
        self.stop_process()
        if not os.environ.get("HS_INTEROP_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def federating_pair(venv: Path = DEFAULT_SYNAPSE_VENV, *, control: bool = False) -> Any:
    """Yield ``(synapse, hs)``, both running; always stopped and wiped afterwards.

    ``control=True`` puts a second Synapse in hs's place: the tests' own sanity check.
    """
    certdir = Path(tempfile.mkdtemp(prefix="hs-interop-tls-"))
    cert, key = make_self_signed_cert(certdir)
    synapse = FedSynapse(cert, key, venv=venv)
    hs: FedHs | FedSynapse = FedSynapse(cert, key, venv=venv) if control else FedHs(cert, key)
    try:
        hs.start()
        synapse.start()
        yield synapse, hs
    finally:
        hs.stop()
        synapse.stop()
        shutil.rmtree(certdir, ignore_errors=True)
