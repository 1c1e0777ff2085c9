"""Config validation, generate-config round trip, and startup error reporting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.server.procs import run_cli

from hs.config import ConfigError, load_config, parse_config
from hs.config.signing_key import read_key_file


def test_generate_config_round_trip(tmp_path: Path):
    path = tmp_path / "conf" / "homeserver.yaml"
    result = run_cli("generate-config", "--server-name", "example.org", "--config-path",
                     str(path))
    assert result.returncode == 0, result.stderr
    text = path.read_text()
    assert text.lstrip().startswith("#")  # commented
    config = load_config(path)
    assert config.server_name == "example.org"
    assert config.warnings == []
    assert config.listeners[0].port == 8008
    assert config.listeners[0].bind_addresses == ["127.0.0.1"]
    assert {"client", "federation", "metrics", "health"} <= config.listeners[0].resources
    assert config.database.dialect == "sqlite"
    assert Path(config.database.sqlite_path).parent == path.parent
    assert config.registration_shared_secret
    assert config.rate_limit("rc_login.failed_attempts") is not None
    ((key_id, _key),) = read_key_file(config.signing_key_path)
    assert key_id.startswith("ed25519:")
    again = run_cli("generate-config", "--server-name", "example.org", "-c", str(path))
    assert again.returncode == 1 and "already exists" in again.stderr


def test_synapse_shapes_parse():
    config = parse_config({
        "server_name": "example.com",
        "listeners": [{"port": 8448, "tls": False, "type": "http", "x_forwarded": True,
                       "bind_addresses": ["::1"], "resources": [{"names": ["client"],
                                                                  "compress": False}]}],
        "database": {"name": "psycopg2", "args": {"user": "u", "password": "p",
                                                  "database": "d", "host": "h", "port": 5433,
                                                  "cp_min": 2, "cp_max": 7}},
        "rc_message": {"per_second": 0, "burst_count": 0},
        "max_upload_size": "10M", "refreshable_access_token_lifetime": "10m",
        "report_stats": False, "macaroon_secret_key": "x",
        "caches": {"global_factor": 1.0}, "presence": {"enabled": False},
        "gc_thresholds": [700, 10, 10], "gc_min_interval": ["1s", "10s", "30s"],
    })
    assert config.database.dialect == "postgres" and config.database.pool_max == 7
    assert config.max_upload_size == 10 * 1024 * 1024
    assert config.refreshable_access_token_lifetime_ms == 600_000
    assert config.rate_limit("rc_message") is None
    assert config.presence_enabled is False
    assert config.listeners[0].x_forwarded
    assert config.gc_thresholds == (700, 10, 10)


def test_every_bad_key_is_named():
    with pytest.raises(ConfigError) as info:
        parse_config({"server_name": "bad name", "listeners": [{"port": "eighty"}],
                      "rc_login": {"address": {"per_second": "fast"}},
                      "database": {"name": "mysql"}, "default_room_version": "99",
                      "max_upload_size": "lots", "ip_range_blacklist": ["not-a-net"],
                      "gc_thresholds": [1, 2]})
    keys = {key for key, _ in info.value.problems}
    assert keys == {"server_name", "listeners[0].port", "rc_login.address.per_second",
                    "database.name", "default_room_version", "max_upload_size",
                    "ip_range_blacklist", "gc_thresholds"}


def test_open_registration_needs_explicit_opt_in():
    with pytest.raises(ConfigError, match="enable_registration_without_verification"):
        parse_config({"server_name": "example.com", "enable_registration": True})


def test_unknown_keys_warn():
    config = parse_config({"server_name": "example.com", "enable_registrations": True,
                           "presence": {"enabled": True, "colour": "blue"}})
    assert any("enable_registrations" in w for w in config.warnings)
    assert any("presence.colour" in w for w in config.warnings)


def test_startup_errors_are_readable(tmp_path: Path):
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump({"server_name": "example.com",
                                    "listeners": [{"port": 99999}]}))
    result = run_cli("run", "-c", str(path))
    assert result.returncode == 1
    assert "listeners[0].port" in result.stderr
    assert "Traceback" not in result.stderr

    path.write_text("server_name: [unclosed\n")
    result = run_cli("run", "-c", str(path))
    assert result.returncode == 1 and "not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr

    path.write_text(yaml.safe_dump({"server_name": "example.com",
                                    "signing_key_path": str(tmp_path / "missing.key")}))
    result = run_cli("run", "-c", str(path))
    assert result.returncode == 1 and "signing_key_path" in result.stderr
    assert "Traceback" not in result.stderr

    result = run_cli("run", "-c", str(tmp_path / "absent.yaml"))
    assert result.returncode == 1 and "generate-config" in result.stderr


def test_hash_password():
    result = run_cli("hash-password", "-p", "hunter2")
    assert result.returncode == 0 and result.stdout.startswith("$argon2id$")


def test_federation_knobs_parse(tmp_path: Path):
    base = {"server_name": "example.org", "signing_key_path": str(tmp_path / "k"),
            "database": {"name": "sqlite3", "args": {"database": str(tmp_path / "db")}}}
    unset = parse_config(dict(base))
    assert unset.ip_range_blacklist is None
    assert unset.federation_domain_whitelist is None
    cfg = parse_config({**base, "ip_range_blacklist": [],
                            "federation_domain_whitelist": ["a.org"],
                            "federation_custom_ca_list": ["/ca.pem"],
                            "key_refresh_interval": "1d"})
    assert cfg.ip_range_blacklist == []
    assert cfg.federation_domain_whitelist == ["a.org"]
    assert cfg.federation_custom_ca_list == ["/ca.pem"]
    assert cfg.key_refresh_interval == 86_400_000
