"""Config generation for the benchmark targets and the scenario plan (no servers started)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from bench.load.scenarios import ALL, NEEDS, SCENARIOS, SETUP, STEADY, Plan, World
from bench.load.targets import hs_command, patch_hs_config
from bench.synapse_harness import (
    PrivatePostgres,
    patch_synapse_config,
    postgres_database,
    sqlite_database,
)


def test_synapse_config_opens_registration_and_disables_limits(tmp_path: Path) -> None:
    config = patch_synapse_config({"rc_message": {"per_second": 0.2}, "listeners": [{}]},
                                  port=12345, data_dir=tmp_path,
                                  database=sqlite_database(tmp_path / "db"),
                                  log_config=tmp_path / "log.yaml")
    assert config["listeners"] == [{
        "port": 12345, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
        "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}]
    assert config["enable_registration"] is True
    assert config["enable_registration_without_verification"] is True
    assert config["presence"] == {"enabled": False}
    assert config["federation_domain_whitelist"] == []
    assert config["database"] == {"name": "sqlite3", "args": {"database": str(tmp_path / "db")}}
    rc = {k: v for k, v in config.items() if k.startswith("rc_")}
    assert {"rc_message", "rc_registration", "rc_login", "rc_joins"} <= rc.keys()
    for key, value in rc.items():
        leaves = value.values() if all(isinstance(v, dict) for v in value.values()) else [value]
        for leaf in leaves:
            assert leaf["per_second"] >= 1e5 and leaf["burst_count"] >= 1e5, key


def test_postgres_database_section() -> None:
    pg = PrivatePostgres(port=5555)
    try:
        section = postgres_database(pg, "synapse")
    finally:
        pg.root.rmdir()
    assert section["name"] == "psycopg2"
    assert section["args"]["port"] == 5555 and section["args"]["host"] == "127.0.0.1"
    assert section["args"]["database"] == "synapse"


def test_hs_config_patch_keeps_nested_rc_shape() -> None:
    config = patch_hs_config({"rc_enabled": True, "rc_login": {"address": {"per_second": 1}},
                              "rc_message": {"per_second": 0.2, "burst_count": 10}},
                             {"name": "sqlite3", "args": {"database": "x.db"}})
    assert config["rc_enabled"] is False
    assert config["rc_login"]["address"]["per_second"] >= 1e5
    assert config["rc_message"]["burst_count"] >= 1e5
    assert config["enable_registration_without_verification"] is True
    assert config["presence"] == {"enabled": False}


def test_hs_command_defaults_to_the_checkout() -> None:
    argv, env = hs_command(None)
    assert argv[1:] == ["-m", "hs"]
    assert env["PYTHONPATH"].split(":")[0].endswith("src")
    with pytest.raises(FileNotFoundError):
        hs_command(Path("/nonexistent-venv"))


@pytest.mark.parametrize("scale", [0.05, 0.5, 1, 4])
def test_plan_scales_and_stays_consistent(scale: float) -> None:
    plan = Plan.from_scale(scale)
    assert plan.users >= 4 and plan.rooms >= 2
    assert plan.senders <= plan.users and plan.syncers <= plan.users
    assert Plan.from_scale(scale * 2).users >= plan.users


def test_scenario_registry() -> None:
    assert set(SCENARIOS) == set(ALL) == set(SETUP) | set(STEADY)
    for name, need in NEEDS.items():
        assert ALL.index(need) < ALL.index(name)
    world = World(users=[], rooms=["!a:x", "!b:x"])
    for _, unit, total in SCENARIOS.values():
        assert unit and total(Plan.from_scale(1), world) >= 0


def test_targeted_pollers_are_neither_syncers_nor_the_sender() -> None:
    from bench.load.client import User
    from bench.load.scenarios import _targeted

    users = [User(f"@u{i}:x", f"t{i}", f"D{i}") for i in range(10)]
    plan = dataclasses.replace(Plan.from_scale(1), syncers=3, targeted_pollers=100)
    world = World(users=users)
    chosen = _targeted(world, plan)
    assert chosen == users[3:9]  # the syncers and the last user (the sender) left out
    world.pair_rooms = {u.user_id: f"!{u.user_id}" for u in chosen}
    create, join = SCENARIOS["create_rooms"][2], SCENARIOS["join"][2]
    assert create(plan, world) == plan.rooms + 1 + 6
    assert join(plan, world) == len(users) - 1 + plan.syncers * len(world.rooms) + 6
