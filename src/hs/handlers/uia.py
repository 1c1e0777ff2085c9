"""User-interactive authentication (spec "User-Interactive Authentication API").

Sessions and completed stages live in the database, so any worker can continue a
session another one started. A session is bound to the URI and method it began on.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hs.handlers.identifiers import localpart_of, user_id_for
from hs.handlers.passwords import Passwords
from hs.http.errors import InteractiveAuthRequired, MatrixError, bad_json, forbidden
from hs.http.ratelimit import Ratelimiters
from hs.storage.accounts import AccountStore
from hs.storage.accounts.store import UISession

logger = logging.getLogger(__name__)

DUMMY = "m.login.dummy"
PASSWORD = "m.login.password"
REGISTRATION_TOKEN = "m.login.registration_token"
#: Unfinished sessions are forgotten after this long.
SESSION_LIFETIME_MS = 24 * 3600 * 1000
#: Request fields never written to the session table.
_SECRET_FIELDS = frozenset({"password", "new_password"})


@dataclass(frozen=True)
class UIAResult:
    """A finished UIA: what each stage proved, and the request body the session began with."""

    completed: dict[str, Any]
    clientdict: dict[str, Any]
    session_id: str


class InteractiveAuth:
    def __init__(self, server_name: str, store: AccountStore, passwords: Passwords,
                 ratelimiters: Ratelimiters, clock: Callable[[], int]) -> None:
        self.server_name = server_name
        self.store = store
        self.passwords = passwords
        self.ratelimiters = ratelimiters
        self.clock = clock

    async def check(self, request: web.Request, body: dict[str, Any], flows: list[list[str]],
                    *, description: str, user_id: str | None = None,
                    params: dict[str, Any] | None = None) -> UIAResult:
        """Return once a flow is complete; otherwise raise the 401 UIA response.

        ``user_id`` is the account the operation acts on: password stages must prove it.
        """
        auth = body.get("auth")
        if auth is not None and not isinstance(auth, dict):
            raise bad_json("'auth' must be an object")
        clientdict = {k: val for k, val in body.items() if k != "auth"}
        session_id = auth.get("session") if auth else None
        if session_id is not None and not isinstance(session_id, str):
            raise bad_json("'auth.session' must be a string")

        session = await self._load_or_create(request, session_id, clientdict, description,
                                             user_id)
        effective = clientdict or session.clientdict
        stages = {stage for flow in flows for stage in flow}
        completed = await self.store.get_ui_completed(session.session_id)
        challenge = {"flows": [{"stages": f} for f in flows], "params": params or {},
                     "session": session.session_id}

        stage_type = auth.get("type") if auth else None
        if auth is not None and stage_type is not None:
            if not isinstance(stage_type, str):
                raise bad_json("'auth.type' must be a string")
            if stage_type not in stages:
                raise InteractiveAuthRequired(
                    {**challenge, "completed": sorted(completed)}, "M_UNRECOGNIZED",
                    f"Auth type {stage_type} is not offered here")
            if stage_type not in completed:
                try:
                    result = await self._check_stage(request, stage_type, auth, user_id)
                except _StageFailed as exc:
                    raise InteractiveAuthRequired(
                        {**challenge, "completed": sorted(completed)}, exc.errcode,
                        exc.error) from None
                await self.store.mark_ui_stage_complete(session.session_id, stage_type, result)
                completed[stage_type] = result

        if auth is not None and any(all(s in completed for s in flow) for flow in flows):
            return UIAResult(completed, effective, session.session_id)
        raise InteractiveAuthRequired({**challenge, "completed": sorted(completed)}
                                      if completed else challenge)

    async def finish(self, result: UIAResult) -> None:
        """Forget the session once the protected operation has been done."""
        await self.store.delete_ui_session(result.session_id)

    async def _load_or_create(self, request: web.Request, session_id: str | None,
                              clientdict: dict[str, Any], description: str,
                              user_id: str | None) -> UISession:
        now = self.clock()
        if session_id is not None:
            session = await self.store.get_ui_session(session_id)
            if session is None or session.creation_ts < now - SESSION_LIFETIME_MS:
                raise MatrixError(400, "M_UNKNOWN", "Unknown or expired UIA session")
            if session.uri != request.path or session.method != request.method:
                raise forbidden("Requested operation has changed during the UI "
                                "authentication session")
            if session.user_id != user_id:
                raise forbidden("UIA session belongs to a different user")
            return session
        if secrets.randbelow(100) == 0:
            await self.store.delete_expired_ui_sessions(now - SESSION_LIFETIME_MS)
        # Never persist secrets: a client finishing UIA must send passwords again.
        stored = {k: val for k, val in clientdict.items() if k not in _SECRET_FIELDS}
        session = UISession(secrets.token_urlsafe(24), now, request.path, request.method,
                            description, user_id, stored)
        await self.store.create_ui_session(session)
        return session

    async def _check_stage(self, request: web.Request, stage: str, auth: dict[str, Any],
                           user_id: str | None) -> Any:
        if stage == DUMMY:
            return True
        if stage == PASSWORD:
            return await self._check_password(auth, user_id)
        if stage == REGISTRATION_TOKEN:
            token = auth.get("token")
            if not isinstance(token, str):
                raise bad_json("'auth.token' must be a string")
            row = await self.store.get_registration_token(token)
            now = self.clock()
            if row is None or (row.expiry_time is not None and row.expiry_time <= now) or (
                    row.uses_allowed is not None and row.completed >= row.uses_allowed):
                raise _StageFailed("M_FORBIDDEN", "Invalid registration token")
            return token
        raise _StageFailed("M_UNRECOGNIZED", f"Unsupported auth type {stage}")

    async def _check_password(self, auth: dict[str, Any], user_id: str | None) -> str:
        claimed = claimed_user(auth)
        if user_id is None:
            raise _StageFailed("M_FORBIDDEN", "Password auth is not valid here")
        local = localpart_of(claimed, self.server_name) if claimed else None
        if claimed is not None and (local is None or user_id_for(local, self.server_name)
                                    .lower() != user_id.lower()):
            raise forbidden("Requested user does not match the authenticated user")
        password = auth.get("password")
        if not isinstance(password, str):
            raise bad_json("'auth.password' must be a string")
        failures = self.ratelimiters["rc_login.failed_attempts"]
        failures.check(user_id, update=False)
        user = await self.store.get_user(user_id)
        if user is None or not await self.passwords.verify(user.password_hash, password):
            failures.record(user_id)
            raise _StageFailed("M_FORBIDDEN", "Invalid password")
        return user_id


def claimed_user(data: dict[str, Any]) -> str | None:
    """The user named by an ``m.id.user`` identifier or the legacy ``user`` field."""
    identifier = data.get("identifier")
    if identifier is not None:
        if not isinstance(identifier, dict):
            raise bad_json("'identifier' must be an object")
        id_type = identifier.get("type")
        if id_type != "m.id.user":
            raise forbidden(f"Unsupported identifier type {id_type!r}; only m.id.user")
        user = identifier.get("user")
        if not isinstance(user, str):
            raise bad_json("'identifier.user' must be a string")
        return user
    user = data.get("user")
    if user is not None and not isinstance(user, str):
        raise bad_json("'user' must be a string")
    return user


class _StageFailed(Exception):
    def __init__(self, errcode: str, error: str) -> None:
        super().__init__(error)
        self.errcode = errcode
        self.error = error
