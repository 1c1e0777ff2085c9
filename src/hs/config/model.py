"""The validated homeserver configuration (Synapse key names and shapes where they overlap)."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hs.config import values as v
from hs.config.errors import ConfigError
from hs.config.reader import Section
from hs.core.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS

logger = logging.getLogger(__name__)

RESOURCE_NAMES = frozenset({"client", "federation", "keys", "metrics", "health", "media",
                            "openid", "static", "consent", "replication"})
#: Synapse settings hs accepts without using, so a copied homeserver.yaml loads quietly.
IGNORED_SYNAPSE_KEYS = frozenset({
    "report_stats", "pid_file", "macaroon_secret_key", "form_secret", "suppress_key_server_warning",
    "web_client_location", "admin_contact", "url_preview_enabled", "enable_media_repo",
    "email", "user_directory", "room_list_publication_rules", "app_service_config_files",
    "track_appservice_user_ips", "worker_app", "instance_map", "stream_writers",
    "use_presence", "require_auth_for_profile_requests",
    "limit_profile_requests_to_users_who_share_rooms",
    "include_profile_data_on_invite", "auto_join_rooms", "autocreate_auto_join_rooms",
    "enable_3pid_lookup", "metrics_flags", "opentracing", "redis", "sentry",
    "experimental_features",
    "dynamic_thumbnails", "thumbnail_sizes",
    "url_preview_ip_range_blacklist", "max_image_pixels", "recaptcha_public_key",
    "recaptcha_private_key", "enable_registration_captcha", "retention", "push",
})

#: Synapse's defaults (per_second, burst_count) for the rate limiters hs knows.
RC_DEFAULTS: dict[str, tuple[float, int]] = {
    "rc_message": (0.2, 10),
    "rc_registration": (0.17, 3),
    "rc_registration_token_validity": (0.1, 5),
    "rc_login.address": (0.17, 3),
    "rc_login.account": (0.17, 3),
    "rc_login.failed_attempts": (0.17, 3),
    "rc_joins.local": (0.1, 10),
    "rc_joins.remote": (0.01, 10),
    "rc_joins_per_room": (1.0, 10),
    "rc_invites.per_room": (0.3, 10),
    "rc_invites.per_user": (0.003, 5),
    "rc_invites.per_issuer": (0.5, 5),
    "rc_3pid_validation": (0.003, 5),
    "rc_admin_redaction": (0.0, 0),
    "rc_room_creation": (0.016, 10),
    "rc_reports": (1.0, 5),
    "rc_media_create": (10.0, 50),
    "rc_presence.per_user": (0.1, 1),
    "rc_delayed_event_mgmt": (1.0, 5),
    "rc_key_requests": (20.0, 100),
}
_RC_NESTED = {"rc_login": ("address", "account", "failed_attempts"),
              "rc_joins": ("local", "remote"),
              "rc_invites": ("per_room", "per_user", "per_issuer"), "rc_presence": ("per_user",)}


@dataclass(frozen=True)
class RateLimit:
    """Token bucket: ``burst_count`` tokens refilled at ``per_second``; 0/s means unlimited."""

    per_second: float
    burst_count: int

    @property
    def enabled(self) -> bool:
        return self.per_second > 0 and self.burst_count > 0


@dataclass(frozen=True)
class ListenerConfig:
    port: int
    bind_addresses: list[str]
    tls: bool = False
    type: str = "http"
    x_forwarded: bool = False
    resources: frozenset[str] = frozenset({"client", "federation"})


@dataclass(frozen=True)
class DatabaseSettings:
    """The ``database:`` section; ``to_database_config`` builds the storage layer's config."""

    dialect: str
    sqlite_path: str = ""
    user: str | None = None
    password: str | None = None
    database: str | None = None
    host: str | None = None
    port: int | None = None
    pool_min: int = 5
    pool_max: int = 10

    def to_database_config(self) -> Any:
        from hs.storage.database import DatabaseConfig

        if self.dialect == "sqlite":
            return DatabaseConfig(dialect="sqlite", sqlite_path=self.sqlite_path)
        return DatabaseConfig(dialect="postgres", user=self.user, password=self.password,
                              database=self.database, host=self.host, port=self.port,
                              pool_min=self.pool_min, pool_max=self.pool_max)


@dataclass(frozen=True)
class TrustedKeyServer:
    server_name: str
    verify_keys: dict[str, str] = field(default_factory=dict)
    accept_keys_insecurely: bool = False


@dataclass(frozen=True)
class HomeserverConfig:
    server_name: str
    config_path: str | None
    listeners: list[ListenerConfig]
    database: DatabaseSettings
    signing_key_path: str
    public_baseurl: str | None = None
    serve_server_wellknown: bool = False
    enable_registration: bool = False
    enable_registration_without_verification: bool = False
    registration_requires_token: bool = False
    registration_shared_secret: str | None = None
    allow_guest_access: bool = False
    password_login_enabled: bool = True
    password_minimum_length: int = 0
    refreshable_access_token_lifetime_ms: int = 5 * 60_000
    refresh_token_lifetime_ms: int | None = None
    login_via_existing_session: bool = False
    login_token_timeout_ms: int = 5 * 60_000
    rc_enabled: bool = True
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    media_store_path: str = "media_store"
    max_upload_size: int = 50 * 1024 * 1024
    max_request_body_size: int = 50 * 1024 * 1024
    federation_verify_certificates: bool = True
    #: CA files trusted for federation TLS (they replace the system store, as in Synapse).
    federation_custom_ca_list: list[str] = field(default_factory=list)
    #: Server-name globs whose federation certificates are not verified.
    federation_certificate_verification_whitelist: list[str] = field(default_factory=list)
    #: When set, the only servers hs federates with.
    federation_domain_whitelist: list[str] | None = None
    #: None: hs's default blacklist (private, loopback, link-local ...); [] blocks nothing extra.
    ip_range_blacklist: list[Any] | None = None
    ip_range_whitelist: list[Any] = field(default_factory=list)
    trusted_key_servers: list[TrustedKeyServer] = field(default_factory=list)
    #: Synapse's ``old_signing_keys``: {"ed25519:id": {"key": base64, "expired_ts": ms}}.
    old_signing_keys: dict[str, Any] | None = None
    #: How long our published key responses stay valid (ms); Synapse's ``key_refresh_interval``.
    key_refresh_interval: int | None = None
    default_room_version: str = DEFAULT_ROOM_VERSION.identifier
    presence_enabled: bool = True
    enable_metrics: bool = False
    caches_global_factor: float = 0.5
    log_config: str | None = None
    log_level: str = "INFO"
    #: Synapse's ``gc_thresholds``: CPython's three collector thresholds for the server
    #: process (see ``hs.runtime``).
    gc_thresholds: tuple[int, int, int] = (50_000, 20, 100)
    tls_certificate_path: str | None = None
    tls_private_key_path: str | None = None
    warnings: list[str] = field(default_factory=list)

    def rate_limit(self, name: str) -> RateLimit | None:
        """The limiter called ``name`` (e.g. ``rc_login.address``), or None when switched off."""
        if not self.rc_enabled:
            return None
        limit = self.rate_limits.get(name)
        return limit if limit is not None and limit.enabled else None

    def replace(self, **changes: Any) -> HomeserverConfig:
        return dataclasses.replace(self, **changes)


def load_config(path: str | os.PathLike[str]) -> HomeserverConfig:
    """Read and validate a YAML config file; raises ``ConfigError`` naming every bad key."""
    config_path = Path(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("<file>", f"cannot read {config_path}: {exc.strerror}")],
                          str(config_path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([("<file>", f"is not valid YAML{where}: "
                                      f"{getattr(exc, 'problem', None) or exc}")],
                          str(config_path)) from None
    return parse_config(data, config_path=str(config_path))


def parse_config(data: Any, config_path: str | None = None) -> HomeserverConfig:
    """Validate an already-parsed mapping; relative paths resolve against the config's folder."""
    problems: list[tuple[str, str]] = []
    unknown: list[str] = []
    root = Section(data, "", problems, unknown)
    base = Path(config_path).resolve().parent if config_path else Path.cwd()

    def resolve(p: str | None) -> str | None:
        return None if p is None else str((base / os.path.expanduser(p)).resolve())

    server_name = root.get("server_name", v.as_server_name,
                           hint="set it to the domain in your user IDs, e.g. example.com")
    opts: dict[str, Any] = {}
    opts["listeners"] = _listeners(root, problems)
    opts["database"] = _database(root.section("database"), resolve)
    opts["signing_key_path"] = resolve(root.get(
        "signing_key_path", v.as_str, f"{server_name or 'homeserver'}.signing.key"))
    if root.has("public_baseurl"):
        opts["public_baseurl"] = root.get("public_baseurl", v.as_http_url, None)
    for key in ("serve_server_wellknown", "enable_registration",
                "enable_registration_without_verification", "registration_requires_token",
                "allow_guest_access", "federation_verify_certificates", "enable_metrics",
                "rc_enabled"):
        if root.has(key):
            opts[key] = root.get(key, v.as_bool, False)
    opts["registration_shared_secret"] = _shared_secret(root, resolve, problems)
    _password_config(root.section("password_config"), opts)
    for key, dest in (("refreshable_access_token_lifetime", "refreshable_access_token_lifetime_ms"),
                      ("refresh_token_lifetime", "refresh_token_lifetime_ms")):
        if root.has(key):
            opts[dest] = root.get(key, v.as_duration_ms, None)
        root.mark_seen(key)
    _login_via_existing_session(root.section("login_via_existing_session"), opts)
    opts["rate_limits"] = _rate_limits(root)
    opts["media_store_path"] = resolve(root.get("media_store_path", v.as_str, "media_store"))
    opts["max_upload_size"] = root.get("max_upload_size", v.as_size, 50 * 1024 * 1024)
    opts["max_request_body_size"] = root.get(
        "max_request_body_size", v.as_size, max(opts["max_upload_size"] or 0, 1024 * 1024))
    opts["ip_range_blacklist"] = root.get("ip_range_blacklist", v.as_ip_networks, None)
    for key in ("federation_custom_ca_list", "federation_certificate_verification_whitelist"):
        opts[key] = root.get(key, v.as_str_list, None) or []
    opts["federation_domain_whitelist"] = root.get("federation_domain_whitelist",
                                                   v.as_str_list, None)
    opts["old_signing_keys"] = root.get("old_signing_keys", _old_signing_keys, None)
    opts["key_refresh_interval"] = root.get("key_refresh_interval", v.as_duration_ms, None)
    opts["ip_range_whitelist"] = root.get("ip_range_whitelist", v.as_ip_networks, None) or []
    opts["trusted_key_servers"] = _trusted_key_servers(root, problems)
    opts["default_room_version"] = root.get("default_room_version", _room_version,
                                            DEFAULT_ROOM_VERSION.identifier)
    presence = root.section("presence")
    opts["presence_enabled"] = presence.get("enabled", v.as_bool, True)
    presence.finish()
    caches = root.section("caches")
    opts["caches_global_factor"] = caches.get("global_factor", lambda x: v.as_number(x, minimum=0),
                                              0.5)
    caches.mark_seen("per_cache_factors", "expire_caches", "cache_entry_ttl",
                     "sync_response_cache_duration")
    caches.finish()
    if root.has("log_config"):
        opts["log_config"] = resolve(root.get("log_config", _existing_file, None))
    root.mark_seen("log_config")
    opts["log_level"] = root.get("log_level", _log_level, "INFO")
    opts["gc_thresholds"] = root.get("gc_thresholds", _gc_thresholds, (50_000, 20, 100))
    root.mark_seen("gc_min_interval")
    for key in ("tls_certificate_path", "tls_private_key_path"):
        if root.has(key):
            opts[key] = resolve(root.get(key, _existing_file, None))
    root.mark_seen("tls_certificate_path", "tls_private_key_path")
    root.mark_seen(*IGNORED_SYNAPSE_KEYS)
    root.finish()

    if opts["listeners"] and any(li.tls for li in opts["listeners"]) and not (
            opts.get("tls_certificate_path") and opts.get("tls_private_key_path")):
        problems.append(("listeners", "a listener has tls: true but tls_certificate_path and "
                                      "tls_private_key_path are not both set"))
    if opts.get("enable_registration") and not (
            opts.get("enable_registration_without_verification")
            or opts.get("registration_requires_token")):
        problems.append(("enable_registration",
                         "open registration without any verification lets anyone create "
                         "accounts; also set enable_registration_without_verification: true "
                         "(or registration_requires_token: true)"))
    if problems:
        raise ConfigError(problems, config_path)
    warnings = [f"unknown configuration key {key!r} is ignored (typo?)" for key in unknown]
    return HomeserverConfig(server_name=server_name, config_path=config_path,
                            warnings=warnings, **opts)


def _room_version(value: Any) -> str:
    if not isinstance(value, str | int) or str(value) not in KNOWN_ROOM_VERSIONS:
        raise ValueError(f"unknown room version {value!r}; known: {', '.join(KNOWN_ROOM_VERSIONS)}")
    return str(value)


def _gc_thresholds(value: Any) -> tuple[int, int, int]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError("must be a list of three integers, e.g. [50000, 20, 100]")
    first, second, third = (v.as_int(x, minimum=1) for x in value)
    return first, second, third


def _log_level(value: Any) -> str:
    level = v.as_str(value).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not {value!r}")
    return level


def _existing_file(value: Any) -> str:
    path = v.as_str(value)
    if not Path(os.path.expanduser(path)).is_file():
        raise ValueError(f"file {path!r} does not exist")
    return path


def _listeners(root: Section, problems: list[tuple[str, str]]) -> list[ListenerConfig]:
    root.mark_seen("listeners")
    raw = root.data.get("listeners")
    if raw is None:
        return [ListenerConfig(port=8008, bind_addresses=["127.0.0.1"])]
    if not isinstance(raw, list) or not raw:
        problems.append(("listeners", "must be a non-empty list of listener mappings"))
        return []
    listeners = []
    for index, item in enumerate(raw):
        sec = Section(item, f"listeners[{index}]", problems, root.unknown)
        port = sec.get("port", lambda x: v.as_int(x, minimum=0), 0)
        if port > 65535:
            problems.append((sec.key_path("port"), f"must be at most 65535, not {port}"))
        binds = sec.get("bind_addresses", v.as_str_list, ["::", "0.0.0.0"])
        if sec.has("bind_address"):
            binds = [sec.get("bind_address", v.as_str, "")]
        kind = sec.get("type", v.as_str, "http")
        if kind not in ("http", "metrics"):
            problems.append((sec.key_path("type"), f"must be 'http' or 'metrics', not {kind!r}"))
        names: set[str] = set()
        sec.mark_seen("resources")
        resources = sec.data.get("resources", [{"names": ["client", "federation"]}])
        if kind == "metrics":
            names.add("metrics")
        elif not isinstance(resources, list):
            problems.append((sec.key_path("resources"), "must be a list of {names: [...]}"))
        else:
            for r_index, res in enumerate(resources):
                rsec = Section(res, f"{sec.key_path('resources')}[{r_index}]", problems,
                               root.unknown)
                for name in rsec.get("names", v.as_str_list, None) or []:
                    if name not in RESOURCE_NAMES:
                        problems.append((rsec.key_path("names"),
                                         f"unknown resource {name!r}; choose from "
                                         f"{', '.join(sorted(RESOURCE_NAMES))}"))
                    names.add(name)
                rsec.mark_seen("compress")
                rsec.finish()
        listeners.append(ListenerConfig(
            port=port, bind_addresses=binds, type=kind, resources=frozenset(names),
            tls=sec.get("tls", v.as_bool, False), x_forwarded=sec.get("x_forwarded", v.as_bool,
                                                                      False)))
        sec.mark_seen("request_id_header")
        sec.finish()
    return listeners


def _database(sec: Section, resolve: Any) -> DatabaseSettings:
    name = sec.get("name", v.as_str, "sqlite3")
    args = sec.section("args")
    sec.mark_seen("allow_unsafe_locale", "txn_limit")
    sec.finish()
    if name == "sqlite3":
        path = resolve(args.get("database", v.as_str, "homeserver.db"))
        args.mark_seen("cp_min", "cp_max")
        args.finish()
        return DatabaseSettings(dialect="sqlite", sqlite_path=path)
    if name not in ("psycopg2", "psycopg", "asyncpg", "postgres", "postgresql"):
        sec.problems.append((sec.key_path("name"),
                             f"unsupported database {name!r}; use sqlite3 or psycopg2"))
        return DatabaseSettings(dialect="sqlite")
    database = args.get("database", v.as_str, None) or args.get("dbname", v.as_str, None)
    settings = DatabaseSettings(
        dialect="postgres", user=args.get("user", v.as_str, None),
        password=args.get("password", lambda x: v.as_str(str(x), allow_empty=True), None),
        database=database, host=args.get("host", v.as_str, None),
        port=args.get("port", lambda x: v.as_int(x, minimum=1), None),
        pool_min=args.get("cp_min", lambda x: v.as_int(x, minimum=1), 5),
        pool_max=args.get("cp_max", lambda x: v.as_int(x, minimum=1), 10))
    if settings.pool_min > settings.pool_max:
        sec.problems.append((args.key_path("cp_min"), "must not be larger than cp_max"))
    args.mark_seen("sslmode", "keepalives_idle", "keepalives_interval", "keepalives_count")
    args.finish()
    return settings


def _shared_secret(root: Section, resolve: Any, problems: list[tuple[str, str]]) -> str | None:
    secret = root.get("registration_shared_secret", v.as_str, None)
    secret_path = root.get("registration_shared_secret_path", v.as_str, None)
    if secret_path and not secret:
        try:
            secret = Path(resolve(secret_path)).read_text().strip()
        except OSError as exc:
            problems.append(("registration_shared_secret_path",
                             f"cannot read {secret_path}: {exc.strerror}"))
    return secret


def _password_config(sec: Section, opts: dict[str, Any]) -> None:
    opts["password_login_enabled"] = sec.get("enabled", v.as_bool, True)
    policy = sec.section("policy")
    opts["password_minimum_length"] = policy.get("minimum_length",
                                                 lambda x: v.as_int(x, minimum=0), 0)
    policy.mark_seen("enabled", "require_digit", "require_symbol", "require_lowercase",
                     "require_uppercase")
    policy.finish()
    sec.mark_seen("localdb_enabled", "pepper")
    sec.finish()


def _login_via_existing_session(sec: Section, opts: dict[str, Any]) -> None:
    opts["login_via_existing_session"] = sec.get("enabled", v.as_bool, False)
    opts["login_token_timeout_ms"] = sec.get("token_timeout", v.as_duration_ms, 5 * 60_000)
    sec.mark_seen("require_ui_auth")
    sec.finish()


def _one_limit(sec: Section, name: str) -> RateLimit:
    per_second, burst = RC_DEFAULTS[name]
    return RateLimit(per_second=sec.get("per_second", lambda x: v.as_number(x, minimum=0),
                                        per_second),
                     burst_count=sec.get("burst_count", lambda x: v.as_int(x, minimum=0), burst))


def _rate_limits(root: Section) -> dict[str, RateLimit]:
    limits: dict[str, RateLimit] = {}
    for name in RC_DEFAULTS:
        if "." in name:
            continue
        sec = root.section(name)
        limits[name] = _one_limit(sec, name)
        sec.finish()
    for outer, inner_names in _RC_NESTED.items():
        outer_sec = root.section(outer)
        for inner in inner_names:
            sec = outer_sec.section(inner)
            limits[f"{outer}.{inner}"] = _one_limit(sec, f"{outer}.{inner}")
            sec.finish()
        outer_sec.finish()
    fed = root.section("rc_federation")
    for key in ("window_size", "sleep_limit", "sleep_delay", "reject_limit", "concurrent"):
        fed.get(key, lambda x: v.as_int(x, minimum=0), 0)
    fed.finish()
    return limits


def _old_signing_keys(value: Any) -> dict[str, Any]:
    from hs.federation.local_keys import parse_old_signing_keys

    if not isinstance(value, dict):
        raise ValueError("must be a mapping of key ID to {key, expired_ts}")
    try:
        parse_old_signing_keys(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return value


def _trusted_key_servers(root: Section, problems: list[tuple[str, str]]) -> list[TrustedKeyServer]:
    root.mark_seen("trusted_key_servers")
    raw = root.data.get("trusted_key_servers")
    if raw is None:
        return [TrustedKeyServer("matrix.org")]
    if not isinstance(raw, list):
        problems.append(("trusted_key_servers", "must be a list of {server_name: ...}"))
        return []
    servers = []
    for index, item in enumerate(raw):
        sec = Section(item, f"trusted_key_servers[{index}]", problems, root.unknown)
        name = sec.get("server_name", v.as_server_name, "")
        keys_sec = sec.section("verify_keys")
        keys = {k: v.as_str(val) for k, val in keys_sec.items() if isinstance(val, str)}
        if len(keys) != len(keys_sec.data):
            problems.append((keys_sec.key_path(""), "must map key IDs to base64 public keys"))
        servers.append(TrustedKeyServer(name, keys,
                                        sec.get("accept_keys_insecurely", v.as_bool, False)))
        sec.finish()
    return servers
