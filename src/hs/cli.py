"""Command line: ``hs run``, ``generate-config``, ``hash-password``, ``register-user``, ``port-db``.

Errors an admin can fix (bad config, missing key file, unreachable database) are printed as
one clear message and exit status 1, never as a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from hs.config import ConfigError, HomeserverConfig, generate_config, load_config

logger = logging.getLogger("hs")
DEFAULT_CONFIG = "homeserver.yaml"


class CliError(Exception):
    """A problem to report to the admin in one line (exit status 1)."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hs", description="hs Matrix homeserver")
    sub = parser.add_subparsers(metavar="COMMAND")

    run = sub.add_parser("run", help="run the homeserver")
    run.add_argument("-c", "--config-path", default=DEFAULT_CONFIG)
    run.add_argument("--generate-if-missing", action="store_true",
                     help="write a config and signing key first when the config is missing")
    run.add_argument("--server-name", help="server name for --generate-if-missing")
    run.set_defaults(func=cmd_run)

    gen = sub.add_parser("generate-config", help="write a commented config and a signing key")
    gen.add_argument("--server-name", required=True)
    gen.add_argument("-c", "--config-path", default=DEFAULT_CONFIG)
    gen.add_argument("--port", type=int, default=8008)
    gen.add_argument("--bind-address", default="127.0.0.1")
    gen.set_defaults(func=cmd_generate_config)

    hp = sub.add_parser("hash-password", help="print an argon2 hash of a password")
    hp.add_argument("-p", "--password", help="password (prompted for when omitted)")
    hp.set_defaults(func=cmd_hash_password)

    reg = sub.add_parser("register-user",
                         help="create a user via a running server's shared-secret admin API")
    reg.add_argument("server_url", nargs="?", default="http://localhost:8008")
    reg.add_argument("-c", "--config-path", help="read registration_shared_secret from here")
    reg.add_argument("-k", "--shared-secret")
    reg.add_argument("-u", "--user")
    reg.add_argument("-p", "--password")
    admin = reg.add_mutually_exclusive_group()
    admin.add_argument("-a", "--admin", action="store_true", default=None)
    admin.add_argument("--no-admin", dest="admin", action="store_false")
    reg.add_argument("-t", "--user-type")
    reg.set_defaults(func=cmd_register_user)

    port = sub.add_parser("port-db", help="copy a SQLite database into the configured PostgreSQL")
    port.add_argument("--sqlite", required=True, help="path of the SQLite database to copy")
    port.add_argument("-c", "--config-path", default=DEFAULT_CONFIG)
    port.set_defaults(func=cmd_port_db)
    return parser


# -- run -----------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    path = Path(args.config_path)
    if not path.exists():
        if not args.generate_if_missing:
            raise CliError(f"config file {path} not found; create one with "
                           f"`hs generate-config --server-name example.com -c {path}` or run "
                           "with --generate-if-missing --server-name example.com")
        if not args.server_name:
            raise CliError("--generate-if-missing needs --server-name")
        generate_config(args.server_name, path)
        print(f"Generated {path} and a signing key; starting.", file=sys.stderr)
    config = load_config(path)
    _setup_logging(config)
    for warning in config.warnings:
        logger.warning("%s", warning)
    _check_signing_key(config)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(_serve(config))
    else:
        uvloop.run(_serve(config))
    return 0


def _setup_logging(config: HomeserverConfig) -> None:
    from hs.http.logcontext import setup_logging

    try:
        setup_logging(config.log_level, config.log_config)
    except (ValueError, TypeError, AttributeError, ImportError) as exc:
        raise ConfigError([("log_config", f"invalid logging configuration: {exc}")],
                          config.config_path) from None


def _check_signing_key(config: HomeserverConfig) -> None:
    from hs.config.signing_key import read_key_file

    try:
        read_key_file(config.signing_key_path)
    except FileNotFoundError:
        raise ConfigError([("signing_key_path", f"{config.signing_key_path} does not exist; "
                                                "`hs generate-config` creates one")],
                          config.config_path) from None
    except (OSError, ValueError) as exc:
        raise ConfigError([("signing_key_path", f"cannot use {config.signing_key_path}: {exc}")],
                          config.config_path) from None


async def _serve(config: HomeserverConfig) -> None:
    from hs.app import Services, create_app
    from hs.http.server import serve
    from hs.runtime import return_large_blocks, tune_gc
    from hs.storage.database import DatabaseError

    try:
        services = await Services.open(config)
    except (DatabaseError, OSError) as exc:
        raise CliError(f"cannot open the database ({config.database.dialect}): {exc}") from None
    apps = [(listener, create_app(services, listener.resources, x_forwarded=listener.x_forwarded))
            for listener in config.listeners]
    tune_gc(config.gc_thresholds)
    return_large_blocks()
    try:
        await serve(config, apps, services.close)  # closes the services on the way out
    except OSError as exc:
        raise CliError(f"cannot listen: {exc}") from None


# -- generate-config / hash-password ------------------------------------------------------

def cmd_generate_config(args: argparse.Namespace) -> int:
    path = Path(args.config_path)
    if path.exists():
        raise CliError(f"{path} already exists; refusing to overwrite it")
    try:
        generate_config(args.server_name, path, port=args.port, bind_address=args.bind_address)
    except ValueError as exc:
        raise CliError(f"--server-name: {exc}") from None
    print(f"Wrote {path} and signing key for {args.server_name}")
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    from hs.handlers.passwords import new_hasher

    password = args.password
    if password is None:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Confirm password: "):
            raise CliError("passwords do not match")
    print(new_hasher().hash(password))
    return 0


# -- register-user -------------------------------------------------------------------------

def _http_json(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            detail = exc.reason
        raise CliError(f"{method} {url} failed: {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None


def cmd_register_user(args: argparse.Namespace) -> int:
    from hs.api.admin.register import registration_mac

    secret = args.shared_secret
    if secret is None:
        if not args.config_path:
            raise CliError("give --shared-secret or -c CONFIG with registration_shared_secret")
        secret = load_config(args.config_path).registration_shared_secret
        if not secret:
            raise CliError(f"{args.config_path} has no registration_shared_secret")
    user = args.user or input("New user localpart: ").strip()
    password = args.password
    if password is None:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Confirm password: "):
            raise CliError("passwords do not match")
    if not password:
        raise CliError("the password must not be empty")
    admin = args.admin
    if admin is None:
        admin = input("Make admin [no]: ").strip().lower() in ("y", "yes", "true")
    url = args.server_url.rstrip("/") + "/_synapse/admin/v1/register"
    nonce = _http_json("GET", url)["nonce"]
    body = {"nonce": nonce, "username": user, "password": password, "admin": admin,
            "mac": registration_mac(secret, nonce, user, password, admin, args.user_type)}
    if args.user_type:
        body["user_type"] = args.user_type
    result = _http_json("POST", url, body)
    print(f"Success! Registered {result['user_id']}")
    return 0


# -- port-db -------------------------------------------------------------------------------

def cmd_port_db(args: argparse.Namespace) -> int:
    from hs.storage.database import DatabaseConfig

    config = load_config(args.config_path)
    if config.database.dialect != "postgres":
        raise CliError(f"{args.config_path} must configure a PostgreSQL database to port into")
    if not Path(args.sqlite).is_file():
        raise CliError(f"SQLite database {args.sqlite} not found")
    try:
        from hs.storage.port_db import port_database
    except ImportError:
        raise CliError("this build of hs has no database porting support") from None
    from hs.storage.database import DatabaseError

    def progress(table: str, done: int, total: int) -> None:
        print(f"  {table}: {done}/{total}", file=sys.stderr)

    source = DatabaseConfig(dialect="sqlite", sqlite_path=args.sqlite)
    try:
        counts = asyncio.run(port_database(source, config.database.to_database_config(),
                                           progress))
    except (DatabaseError, OSError) as exc:
        raise CliError(f"port failed, PostgreSQL left unchanged: {exc}") from None
    rows = sum(pg for _sqlite, pg in counts.values())
    print(f"Copied {rows} rows in {len(counts)} tables from {args.sqlite} into PostgreSQL "
          f"database {config.database.database}")
    return 0
