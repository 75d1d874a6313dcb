"""Server-issued chat sessions: a client never picks a conversation id, and the id alone opens nothing.

A session token is an itsdangerous-signed, timestamped pair (conversation id, secret). The database keeps
only a SHA-256 hash of the secret, so a copy of the database cannot be replayed as tokens; the secret is
compared in constant time. Tokens travel in the `X-Session-Token` header, never in a URL, and expire after
`session_max_age_seconds`. Ending a chat deletes the hash: the token is dead on every server at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.exc import SQLAlchemyError

from bot.db import Database
from bot.models import Conversation, utcnow

SALT = "chat-session-v1"
HEADER = "X-Session-Token"
MAX_TOKEN_CHARS = 512


class InvalidSession(Exception):
    """The token is missing, forged, expired, ended, or belongs to another conversation."""


class SessionsUnavailable(Exception):
    """The token is signed by this server, but the database that would confirm it cannot be read now."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__("the session store is unavailable")
        self.conversation_id = conversation_id


@dataclass(frozen=True)
class NewSession:
    secret: str  # goes into the token only
    token_hash: str  # stored with the conversation


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_session() -> NewSession:
    """A fresh secret (no I/O: the pipeline stores the hash when it creates the conversation)."""
    secret = secrets.token_urlsafe(32)
    return NewSession(secret, hash_secret(secret))


def _signer_on(clock: Callable[[], float]) -> type[TimestampSigner]:
    """A token signer that reads the time from `clock`: issuing stamps it, verifying measures the age."""

    class ClockedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock())

    return ClockedSigner


class Sessions:
    def __init__(
        self,
        db: Database,
        secret_key: str,
        max_age_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.max_age = max_age_seconds
        self._serializer = URLSafeTimedSerializer(secret_key, salt=SALT, signer=_signer_on(clock))

    def token(self, conversation_id: str, session: NewSession) -> str:
        return self._serializer.dumps({"c": conversation_id, "s": session.secret})

    def verify(self, token: str | None, session_id: str | None = None) -> str:
        """The conversation id the token opens; `session_id`, when given, must be that conversation."""
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise InvalidSession("no valid session token")
        try:
            payload = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired as error:
            raise InvalidSession("the session has expired") from error
        except BadSignature as error:
            raise InvalidSession("the session token is not valid") from error
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("c"), str)
            or not isinstance(payload.get("s"), str)
        ):
            raise InvalidSession("the session token is not valid")
        conversation_id = payload["c"]
        if session_id is not None and not hmac.compare_digest(session_id.encode(), conversation_id.encode()):
            raise InvalidSession("the session token belongs to another conversation")
        try:
            with self.db.session() as db_session:
                conversation = db_session.get(Conversation, conversation_id)
                stored = conversation.token_hash if conversation is not None else None
        except SQLAlchemyError as error:  # locked, read-only, gone: the caller decides what still works
            raise SessionsUnavailable(conversation_id) from error
        if stored is None or not hmac.compare_digest(stored.encode(), hash_secret(payload["s"]).encode()):
            raise InvalidSession("the session has ended")
        return conversation_id

    def end(self, conversation_id: str) -> None:
        """Forget the session on the server: its token opens nothing any more."""
        with self.db.session() as db_session:
            conversation = db_session.get(Conversation, conversation_id)
            if conversation is not None:
                conversation.token_hash = None
                conversation.ended_at = utcnow()
