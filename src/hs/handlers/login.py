"""Checking login credentials (``m.login.password``, ``m.login.token``) and login tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hs.config import HomeserverConfig
from hs.handlers.identifiers import localpart_of, user_id_for
from hs.handlers.passwords import Passwords
from hs.handlers.tokens import hash_token, new_token
from hs.handlers.uia import claimed_user
from hs.http.errors import MatrixError, bad_json, forbidden, missing_param
from hs.http.ratelimit import Ratelimiters
from hs.storage.accounts import AccountStore

PASSWORD_LOGIN = "m.login.password"
TOKEN_LOGIN = "m.login.token"


def _invalid_login() -> MatrixError:
    return forbidden("Invalid username or password")


class LoginHandler:
    def __init__(self, config: HomeserverConfig, store: AccountStore, passwords: Passwords,
                 ratelimiters: Ratelimiters, clock: Callable[[], int]) -> None:
        self.config = config
        self.store = store
        self.passwords = passwords
        self.ratelimiters = ratelimiters
        self.clock = clock

    def flows(self) -> list[dict[str, Any]]:
        flows: list[dict[str, Any]] = []
        if self.config.password_login_enabled:
            flows.append({"type": PASSWORD_LOGIN})
        token_flow: dict[str, Any] = {"type": TOKEN_LOGIN}
        if self.config.login_via_existing_session:
            token_flow["get_login_token"] = True
        flows.append(token_flow)
        return flows

    async def validate(self, body: dict[str, Any]) -> str:
        """The user ID the credentials prove, or 403 M_FORBIDDEN / M_USER_DEACTIVATED."""
        login_type = body.get("type")
        if not isinstance(login_type, str):
            if login_type is None:
                raise missing_param("type")
            raise bad_json("'type' must be a string")
        if login_type == PASSWORD_LOGIN and self.config.password_login_enabled:
            return await self._password(body)
        if login_type == TOKEN_LOGIN:
            return await self._token(body)
        raise MatrixError(400, "M_UNKNOWN", f"Unknown login type {login_type}")

    async def _password(self, body: dict[str, Any]) -> str:
        claimed = claimed_user(body)
        if claimed is None:
            raise missing_param("identifier")
        password = body.get("password")
        if not isinstance(password, str):
            raise missing_param("password") if password is None else bad_json(
                "'password' must be a string")
        local = localpart_of(claimed, self.config.server_name)
        if local is None:
            raise _invalid_login()
        user_id = user_id_for(local.lower(), self.config.server_name)
        self.ratelimiters["rc_login.account"].check(user_id)
        failures = self.ratelimiters["rc_login.failed_attempts"]
        failures.check(user_id, update=False)
        user = await self.store.find_user(user_id_for(local, self.config.server_name))
        if user is None or not await self.passwords.verify(user.password_hash, password):
            failures.record(user_id)
            raise _invalid_login()
        if user.deactivated:
            raise MatrixError(403, "M_USER_DEACTIVATED", "This account has been deactivated")
        return user.user_id

    async def _token(self, body: dict[str, Any]) -> str:
        token = body.get("token")
        if not isinstance(token, str):
            raise missing_param("token") if token is None else bad_json("'token' must be a string")
        user_id = await self.store.consume_login_token(hash_token(token), self.clock())
        if user_id is None:
            raise forbidden("Invalid login token")
        user = await self.store.get_user(user_id)
        if user is None or user.deactivated:
            raise MatrixError(403, "M_USER_DEACTIVATED", "This account has been deactivated")
        return user_id

    async def create_login_token(self, user_id: str) -> dict[str, Any]:
        token = new_token("hslt")
        lifetime = self.config.login_token_timeout_ms
        await self.store.add_login_token(hash_token(token), user_id, self.clock() + lifetime)
        return {"login_token": token, "expires_in_ms": lifetime}
