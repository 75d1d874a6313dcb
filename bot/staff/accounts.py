"""Staff accounts: argon2id password hashes, lock-out after repeated failures, sessions and API tokens.

Passwords are hashed with argon2-cffi's defaults (argon2id) and re-hashed when those defaults change.
After `max_failures` wrong passwords in a row an account is locked for `lockout`; an unknown user name
costs the same hashing time as a known one, so timing does not tell which names exist. Browser sessions
and API tokens are random secrets of which only a SHA-256 hash is stored: a copy of the database opens
nothing. Deactivating a user ends their sessions and tokens at once (every request checks `active`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update

from bot.db import Database
from bot.models import as_utc, utcnow
from bot.staff import audit
from bot.staff.audit import Actor
from bot.staff.models import ROLES, ApiToken, StaffSession, StaffUser

MIN_PASSWORD_CHARS = 10
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
TOKEN_PREFIX = "mna_"
PRODUCTION_HASHER = PasswordHasher()  # argon2id, 64 MiB, 3 passes (argon2-cffi's RFC 9106 profile)
_hasher = PRODUCTION_HASHER
# Verified against when the user name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A change to an account that is refused; the message says why."""


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    locked_until: datetime | None
    last_login_at: datetime | None

    @property
    def actor(self) -> Actor:
        return Actor(self.id, self.username, self.display_name, self.role)


@dataclass(frozen=True)
class LoginResult:
    outcome: str  # ok | wrong | locked
    user: UserInfo | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > 256:
        raise AccountError("the password is too long (256 characters at most)")


class Accounts:
    def __init__(
        self,
        db: Database,
        *,
        max_failures: int = 5,
        lockout: timedelta = timedelta(minutes=15),
        session_lifetime: timedelta = timedelta(hours=12),
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.db = db
        # argon2-cffi's defaults (argon2id, 64 MiB, 3 passes); tests pass a cheaper argon2id hasher.
        self.hasher = hasher or _hasher
        self.max_failures = max_failures
        self.lockout = lockout
        self.session_lifetime = session_lifetime

    # --- users -----------------------------------------------------------------------------------------
    def create_user(
        self, username: str, display_name: str, role: str, password: str, actor: Actor
    ) -> UserInfo:
        username = username.strip().lower()
        display_name = " ".join(display_name.split()) or username
        if not USERNAME.match(username):
            raise AccountError("user names are 2-63 characters: lower-case letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise AccountError(f"unknown role '{role}' (one of: {', '.join(ROLES)})")
        if len(display_name) > 80:
            raise AccountError("the display name is too long (80 characters at most)")
        check_password(password)
        with self.db.session() as session:
            if session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
                raise AccountError(f"the user name '{username}' is taken")
            user = StaffUser(
                username=username,
                display_name=display_name,
                role=role,
                password_hash=self.hasher.hash(password),
                active=True,
                failed_logins=0,
                created_at=utcnow(),
            )
            session.add(user)
            session.flush()
            audit.record(session, actor, "user_created", "user", username, role=role)
            return _info(user)

    def has_admin(self) -> bool:
        query = select(func.count()).select_from(StaffUser).where(StaffUser.role == "admin")
        with self.db.session() as session:
            return bool(session.scalar(query.where(StaffUser.active.is_(True))))

    def users(self) -> list[UserInfo]:
        with self.db.session() as session:
            return [_info(user) for user in session.scalars(select(StaffUser).order_by(StaffUser.username))]

    def user(self, user_id: int) -> UserInfo | None:
        with self.db.session() as session:
            user = session.get(StaffUser, user_id)
            return _info(user) if user is not None else None

    def by_username(self, username: str) -> UserInfo | None:
        with self.db.session() as session:
            user = session.scalars(
                select(StaffUser).where(StaffUser.username == username.strip().lower())
            ).first()
            return _info(user) if user is not None else None

    def update_user(
        self, user_id: int, actor: Actor, *, role: str | None = None, active: bool | None = None
    ) -> UserInfo:
        with self.db.session() as session:
            user = _user(session, user_id)
            if role is not None and role != user.role:
                if role not in ROLES:
                    raise AccountError(f"unknown role '{role}'")
                self._keep_an_admin(session, user, role=role)
                audit.record(session, actor, "role_changed", "user", user.username, role=role, was=user.role)
                user.role = role
            if active is not None and active != user.active:
                self._keep_an_admin(session, user, active=active)
                user.active = active
                audit.record(
                    session, actor, "user_activated" if active else "user_deactivated", "user", user.username
                )
                if not active:
                    _end_all(session, user.id)
            return _info(user)

    def set_password(self, user_id: int, password: str, actor: Actor, *, current: str | None = None) -> None:
        """A new password; `current` must be right when users change their own. Ends the user's sessions."""
        check_password(password)
        with self.db.session() as session:
            user = _user(session, user_id)
            if current is not None and not _verify(user.password_hash, current):
                raise AccountError("the current password is not right")
            user.password_hash = self.hasher.hash(password)
            user.failed_logins, user.locked_until = 0, None
            _end_all(session, user.id, tokens=False)
            audit.record(session, actor, "password_changed", "user", user.username)

    def unlock(self, user_id: int, actor: Actor) -> None:
        with self.db.session() as session:
            user = _user(session, user_id)
            user.failed_logins, user.locked_until = 0, None
            audit.record(session, actor, "user_unlocked", "user", user.username)

    # --- signing in ------------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> LoginResult:
        now = utcnow()
        with self.db.session() as session:
            user = session.scalars(
                select(StaffUser).where(StaffUser.username == username.strip().lower()[:64])
            ).first()
            if user is None or not user.active:
                _verify(_DUMMY_HASH, password)
                return LoginResult("wrong")
            if user.locked_until is not None and as_utc(user.locked_until) > now:
                return LoginResult("locked", locked_until=as_utc(user.locked_until))
            if not _verify(user.password_hash, password):
                user.failed_logins += 1
                if user.failed_logins >= self.max_failures:
                    user.locked_until, user.failed_logins = now + self.lockout, 0
                    audit.record(session, Actor.system(), "user_locked", "user", user.username)
                    return LoginResult("locked", locked_until=user.locked_until)
                return LoginResult("wrong")
            if self.hasher.check_needs_rehash(user.password_hash):
                user.password_hash = self.hasher.hash(password)
            user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
            return LoginResult("ok", _info(user))

    def start_session(self, user: UserInfo) -> str:
        """A new browser session; returns the cookie value (stored only as its hash)."""
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.session() as session:
            session.add(
                StaffSession(
                    id=hash_secret(secret),
                    user_id=user.id,
                    created_at=now,
                    expires_at=now + self.session_lifetime,
                )
            )
            audit.record(session, user.actor, "signed_in", "user", user.username)
        return secret

    def session_user(self, secret: str | None) -> UserInfo | None:
        if not secret or len(secret) > 128:
            return None
        with self.db.session() as session:
            row = session.get(StaffSession, hash_secret(secret))
            if row is None or row.revoked_at is not None or as_utc(row.expires_at) <= utcnow():
                return None
            user = session.get(StaffUser, row.user_id)
            return _info(user) if user is not None and user.active else None

    def end_session(self, secret: str | None, actor: Actor | None = None) -> None:
        if not secret:
            return
        with self.db.session() as session:
            row = session.get(StaffSession, hash_secret(secret))
            if row is not None and row.revoked_at is None:
                row.revoked_at = utcnow()
                if actor is not None:
                    audit.record(session, actor, "signed_out", "user", actor.username)

    # --- API tokens ------------------------------------------------------------------------------------
    def create_token(self, user_id: int, name: str, actor: Actor) -> str:
        """A new personal API token; the value is returned once and never stored."""
        name = " ".join(name.split())[:64] or "token"
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.session() as session:
            user = _user(session, user_id)
            session.add(
                ApiToken(
                    user_id=user.id,
                    name=name,
                    token_hash=hash_secret(token),
                    prefix=token[:10],
                    created_at=utcnow(),
                )
            )
            audit.record(session, actor, "token_created", "user", user.username, name=name)
        return token

    def tokens(self, user_id: int) -> list[TokenInfo]:
        query = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
        with self.db.session() as session:
            return [
                TokenInfo(
                    t.id,
                    t.name,
                    t.prefix,
                    as_utc(t.created_at),
                    t.last_used_at and as_utc(t.last_used_at),
                    t.revoked_at is not None,
                )
                for t in session.scalars(query)
            ]

    def revoke_token(self, token_id: int, actor: Actor, owner_id: int | None = None) -> bool:
        """Revoke a token (only one of `owner_id`'s when given); False when there is no such token."""
        with self.db.session() as session:
            token = session.get(ApiToken, token_id)
            if token is None or (owner_id is not None and token.user_id != owner_id):
                return False
            if token.revoked_at is None:
                token.revoked_at = utcnow()
                audit.record(session, actor, "token_revoked", "user", str(token.user_id), name=token.name)
            return True

    def token_user(self, token: str | None) -> UserInfo | None:
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        now = utcnow()
        with self.db.session() as session:
            row = session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_secret(token))).first()
            if row is None or row.revoked_at is not None:
                return None
            user = session.get(StaffUser, row.user_id)
            if user is None or not user.active:
                return None
            if row.last_used_at is None or now - as_utc(row.last_used_at) > timedelta(minutes=1):
                row.last_used_at = now  # at most one write a minute per token
            return _info(user)

    # --- internals -------------------------------------------------------------------------------------
    @staticmethod
    def _keep_an_admin(session, user: StaffUser, role: str | None = None, active: bool | None = None) -> None:  # noqa: ANN001
        """The last active admin cannot be demoted or deactivated: nobody could manage accounts then."""
        losing = user.role == "admin" and user.active and (role not in (None, "admin") or active is False)
        if not losing:
            return
        admins = session.scalar(
            select(func.count())
            .select_from(StaffUser)
            .where(StaffUser.role == "admin", StaffUser.active.is_(True))
        )
        if admins <= 1:
            raise AccountError("this is the last active admin; make someone else admin first")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _user(session, user_id: int) -> StaffUser:  # noqa: ANN001
    user = session.get(StaffUser, user_id)
    if user is None:
        raise AccountError("there is no such user")
    return user


def _end_all(session, user_id: int, tokens: bool = True) -> None:  # noqa: ANN001
    now = utcnow()
    session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if tokens:
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )


def _info(user: StaffUser) -> UserInfo:
    return UserInfo(
        user.id,
        user.username,
        user.display_name,
        user.role,
        user.active,
        user.locked_until and as_utc(user.locked_until),
        user.last_login_at and as_utc(user.last_login_at),
    )
