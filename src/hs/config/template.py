"""``hs generate-config``: a commented homeserver.yaml plus a fresh signing key."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from hs.config.signing_key import generate_key_file

_TEMPLATE = """\
# Configuration for the hs Matrix homeserver. Key names follow Synapse's
# homeserver.yaml wherever the meaning is the same.

# The domain in your users' IDs (@alice:{server_name}). Cannot change later.
server_name: "{server_name}"

# The public URL clients use to reach this server (used in .well-known).
#public_baseurl: "https://matrix.{server_name}/"

# Serve /.well-known/matrix/server (federation delegation to public_baseurl).
serve_server_wellknown: false

listeners:
  - port: {port}
    bind_addresses: ["{bind_address}"]
    type: http
    tls: false
    x_forwarded: false
    # client, federation, keys, metrics, health
    resources:
      - names: [client, federation, keys, metrics, health]

# sqlite3 (default, single file) or psycopg2 (PostgreSQL; asyncpg is also accepted):
#database:
#  name: psycopg2
#  args:
#    user: hs
#    password: secret
#    database: hs
#    host: localhost
#    port: 5432
#    cp_min: 5
#    cp_max: 10
database:
  name: sqlite3
  args:
    database: "{database_path}"

signing_key_path: "{signing_key_path}"

# Log level (DEBUG, INFO, WARNING, ERROR) or a Python logging YAML in log_config.
log_level: INFO
#log_config: "{config_dir}/log.config"

## Registration ##
enable_registration: false
# Required with enable_registration unless another verification method is on.
enable_registration_without_verification: false
# Require an m.login.registration_token (create tokens with the admin API).
registration_requires_token: false
# Allows `hs register-user` / register_new_matrix_user to create accounts.
registration_shared_secret: "{shared_secret}"
allow_guest_access: false

password_config:
  enabled: true
  policy:
    minimum_length: 0

# Refresh tokens (clients asking with refresh_token: true).
refreshable_access_token_lifetime: 5m
#refresh_token_lifetime: 24h

login_via_existing_session:
  enabled: false
  token_timeout: 5m

## Rate limiting (token bucket: per_second refill, burst_count size; per_second: 0 = off) ##
rc_enabled: true
rc_message:
  per_second: 0.2
  burst_count: 10
rc_registration:
  per_second: 0.17
  burst_count: 3
rc_login:
  address:
    per_second: 0.17
    burst_count: 3
  account:
    per_second: 0.17
    burst_count: 3
  failed_attempts:
    per_second: 0.17
    burst_count: 3
rc_joins:
  local:
    per_second: 0.1
    burst_count: 10
  remote:
    per_second: 0.01
    burst_count: 10

## Media ##
media_store_path: "{media_store_path}"
max_upload_size: 50M
# Largest request body accepted by any endpoint (413 M_TOO_LARGE beyond it).
max_request_body_size: 50M

## Federation ##
federation_verify_certificates: true
ip_range_blacklist:
  - "127.0.0.0/8"
  - "10.0.0.0/8"
  - "172.16.0.0/12"
  - "192.168.0.0/16"
  - "100.64.0.0/10"
  - "169.254.0.0/16"
  - "::1/128"
  - "fe80::/10"
  - "fc00::/7"
ip_range_whitelist: []
trusted_key_servers:
  - server_name: "matrix.org"

default_room_version: "{room_version}"

presence:
  enabled: true

enable_metrics: true

caches:
  global_factor: 0.5
"""


def render_config(server_name: str, config_dir: str, *, port: int = 8008,
                  bind_address: str = "127.0.0.1") -> str:
    """The YAML text for a new server whose data lives next to the config file."""
    from hs.core.room_versions import DEFAULT_ROOM_VERSION

    base = Path(config_dir).resolve()
    return _TEMPLATE.format(
        server_name=server_name, port=port, bind_address=bind_address, config_dir=base,
        database_path=base / "homeserver.db", signing_key_path=base / f"{server_name}.signing.key",
        media_store_path=base / "media_store", shared_secret=secrets.token_urlsafe(32),
        room_version=DEFAULT_ROOM_VERSION.identifier)


def generate_config(server_name: str, config_path: str | os.PathLike[str], *,
                    port: int = 8008, bind_address: str = "127.0.0.1") -> Path:
    """Write a config (refusing to overwrite) and a signing key next to it; returns the path."""
    from hs.config.values import as_server_name

    as_server_name(server_name)
    path = Path(config_path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_config(server_name, str(path.parent), port=port, bind_address=bind_address)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    key_path = path.parent / f"{server_name}.signing.key"
    if not key_path.exists():
        generate_key_file(key_path)
    return path
