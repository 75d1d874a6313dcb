"""The staff side's long-lived objects, built when the app starts: accounts, the article store, the safety
gate, the publisher and the knowledge sync thread.

With ready-made services that carry no knowledge index (some API tests), the article features answer
503 and everything else (accounts, escalations, handoffs) works.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import HTTPException
from limits import parse, storage, strategies

from bot.services import Services
from bot.staff.accounts import Accounts
from bot.staff.articles import ArticleStore
from bot.staff.publishing import Publisher
from bot.staff.sync import KnowledgeSync
from bot.staff.unanswered import UnansweredQuestions
from knowledge.gate import GateConfig, SafetyGate, labelled_probes
from knowledge.live import LiveIndex

log = logging.getLogger(__name__)


class LoginLimiter:
    """Sign-in attempts per client address (the `limits` library: Redis when several instances share it)."""

    def __init__(self, storage_url: str, rate: str) -> None:
        self._limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_url))
        self._item = parse(rate)

    def allow(self, client: str) -> bool:
        key = hashlib.sha256(client.encode()).hexdigest()[:24]
        try:
            return self._limiter.hit(self._item, "staff-login", key)
        except Exception as error:  # noqa: BLE001 - the account lock-out still protects every account
            log.error("login rate limiter unavailable: %s", type(error).__name__)
            return True


@dataclass
class StaffRuntime:
    services: Services
    accounts: Accounts
    articles: ArticleStore
    unanswered: UnansweredQuestions
    login_limiter: LoginLimiter
    secret: str
    cookie_secure: bool
    live: LiveIndex | None = None
    gate: SafetyGate | None = None
    publisher: Publisher | None = None
    sync: KnowledgeSync | None = None
    started: list[str] = field(default_factory=list)
    _warming: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def require_publisher(self) -> Publisher:
        if self.publisher is None:
            raise HTTPException(status_code=503, detail="this app instance runs without a knowledge index")
        return self.publisher

    def warm_gate_soon(self) -> None:
        """Embed the labelled questions in the background, once per app, so the first review a clinician
        opens does not wait for it (called when someone signs in)."""
        if self.gate is None or self._warming is not None:
            return
        self._warming = threading.Thread(target=self._warm_gate, name="safety-gate-warm-up", daemon=True)
        self._warming.start()

    def _warm_gate(self) -> None:
        try:
            self.gate.warm(stop=self._stopping.is_set)  # type: ignore[union-attr]
        except Exception as error:  # noqa: BLE001 - the first review simply takes longer
            log.warning("safety gate warm-up failed: %s", type(error).__name__)

    def start(self) -> None:
        if self.sync is not None:
            self.sync.start()
            self.started.append("sync")

    def stop(self) -> None:
        self._stopping.set()
        if self._warming is not None:
            self._warming.join(timeout=30)  # at most one batch of embeddings
        if self.sync is not None and "sync" in self.started:
            self.sync.stop()


def build_runtime(services: Services) -> StaffRuntime:
    settings = services.settings
    accounts = Accounts(
        services.db,
        max_failures=settings.staff_max_failed_logins,
        lockout=timedelta(minutes=settings.staff_lockout_minutes),
        session_lifetime=timedelta(hours=settings.staff_session_hours),
    )
    articles = ArticleStore(services.db, settings.staff_review_months)
    live: LiveIndex | None = getattr(services, "knowledge", None)
    runtime = StaffRuntime(
        services=services,
        accounts=accounts,
        articles=articles,
        unanswered=UnansweredQuestions(services.db, live.embedder if live is not None else None),
        login_limiter=LoginLimiter(settings.rate_limit_storage, settings.staff_login_rate),
        secret=settings.session_secret_key(),
        cookie_secure=bool(settings.staff_cookie_secure),
        live=live,
    )
    if live is not None:
        runtime.gate = safety_gate(services, live)
        runtime.sync = KnowledgeSync(articles, live, settings.knowledge_poll_seconds)
        runtime.publisher = Publisher(articles, live, runtime.gate, runtime.sync)
    return runtime


def safety_gate(services: Services, live: LiveIndex) -> SafetyGate:
    """The gate over the project's labelled questions, reading passages with the protocol's own rules."""
    protocol = services.triage.protocol
    rules = services.triage.rules

    def read(text: str) -> tuple[str, tuple[str, ...]]:
        finding = rules.assess(text, describing=True)  # an article's "if …, call 911" describes a sign
        emergency = tuple(sign for sign in finding.signs if protocol.sign(sign).severity == "emergency")
        return finding.level, emergency

    return SafetyGate(
        live.make_answerer, live.embedder, read, GateConfig.load(services.clinic), labelled_probes()
    )
