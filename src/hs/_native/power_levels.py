"""Selector: the Cython power-levels readers and rule 10 checks, or their pure twin.

Type checkers see the pure twin's signatures; at run time the loader picks the twin.
"""

from typing import TYPE_CHECKING

from hs._native._loader import load

if TYPE_CHECKING:
    from hs._native._power_levels_py import (
        NAMED_LEVELS,
        is_valid_power_level,
        is_valid_server_name,
        is_valid_user_id,
        parse_power_level,
        power_levels_violation,
        room_creators,
        user_level,
    )
else:
    _impl = load("power_levels")
    NAMED_LEVELS = _impl.NAMED_LEVELS
    is_valid_power_level = _impl.is_valid_power_level
    is_valid_server_name = _impl.is_valid_server_name
    is_valid_user_id = _impl.is_valid_user_id
    parse_power_level = _impl.parse_power_level
    power_levels_violation = _impl.power_levels_violation
    room_creators = _impl.room_creators
    user_level = _impl.user_level

__all__ = [
    "NAMED_LEVELS",
    "is_valid_power_level",
    "is_valid_server_name",
    "is_valid_user_id",
    "parse_power_level",
    "power_levels_violation",
    "room_creators",
    "user_level",
]
