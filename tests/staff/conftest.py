"""The staff side in-process: the real article store on a throwaway SQLite database, the real embedding
model, triage engine and safety gate, the app's real routes through TestClient (over https, because staff
cookies are Secure outside development). Only the Rasa server is a stand-in (tests/escalation/stubs.py);
the e2e tests use the real one.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from bot.db import Database
from bot.knowledge_base import answerer_factory
from bot.services import Services
from bot.settings import Settings
from bot.staff.accounts import Accounts, UserInfo
from bot.staff.articles import ArticleStore
from bot.staff.audit import Actor
from knowledge.articles import load_articles
from knowledge.clinic import load_clinic_profile
from knowledge.index import PassageStore
from knowledge.live import LiveIndex
from safety.engine import TriageEngine
from tests.conftest import learned_cache
from tests.escalation.stubs import StubRasa, running_app

ROOT = Path(__file__).resolve().parents[2]
ARTICLES = ROOT / "knowledge" / "articles"
PASSWORD = "correct horse battery"
TEST_ACTOR = Actor.system("test set-up")


@pytest.fixture(scope="session")
def embedder():
    from knowledge.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def clinic():
    return load_clinic_profile()


@pytest.fixture(scope="session")
def triage(embedder, clinic) -> TriageEngine:
    engine = TriageEngine(clinic)
    folder = learned_cache() if _has_model() else None
    if folder is not None and folder.is_dir():
        engine.load_learned_layer(embedder, folder)
    return engine


def _has_model() -> bool:
    import os

    return Path(os.environ.get("ASSISTANT_RASA_MODEL", "")).is_file()


@pytest.fixture(scope="session")
def seed_store(embedder) -> PassageStore:
    """The index of the seed articles, built once per run (each test's live index starts from it)."""
    return PassageStore.build(load_articles(ARTICLES), embedder)


@dataclass
class Staff:
    """A running app with a fresh database, and helpers to act as each role."""

    client: TestClient
    services: Services
    accounts: Accounts
    articles: ArticleStore
    users: dict[str, UserInfo]
    tokens: dict[str, str]

    def api(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def login(self, role: str) -> str:
        """Sign the client in as `role`; returns the CSRF token of the new session."""
        return sign_in(self.client, self.users[role].username)

    @property
    def runtime(self):  # noqa: ANN201
        return self.client.app.state.staff


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    client.cookies.clear()
    token = csrf_from(client.get("/admin/login").text)
    response = client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/admin"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_from(client.get("/admin").text)


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'<meta name="csrf-token" content="([^"]+)"', html
    )
    assert found, "no CSRF token on the page"
    return found.group(1)


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashing() -> Iterator[None]:
    """argon2id with test-sized costs (the production parameters are checked in test_accounts.py)."""
    from bot.staff import accounts

    default = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    accounts._hasher = default


@pytest.fixture(scope="session")
def seeded(tmp_path_factory, migrated_template: Path, quick_password_hashing) -> tuple[Path, dict, dict]:
    """A migrated database with the seed articles and one user (and API token) per role, made once."""
    path = tmp_path_factory.mktemp("seeded") / "app.db"
    shutil.copyfile(migrated_template, path)
    db = Database(f"sqlite:///{path}")
    ArticleStore(db).seed(ARTICLES)
    accounts = Accounts(db)
    users, tokens = {}, {}
    for role in ("admin", "editor", "clinician"):
        users[role] = accounts.create_user(f"{role}-1", f"{role.title()} One", role, PASSWORD, TEST_ACTOR)
        tokens[role] = accounts.create_token(users[role].id, "tests", TEST_ACTOR)
    db.engine.dispose()
    return path, users, tokens


def open_staff(folder: Path, seeded, embedder, triage, clinic, seed_store, **overrides):  # noqa: ANN001, ANN201
    """A fresh copy of the seeded database and the app around it; returns (Staff, the app's context)."""
    template, users, tokens = seeded
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "app.db"
    shutil.copyfile(template, path)
    db = Database(f"sqlite:///{path}")
    index_dir = overrides.pop("index_dir", None) or folder / "index"
    settings = Settings(
        _env_file=None,
        environment=overrides.pop("environment", "test"),
        var_dir=folder,
        index_dir=index_dir,
        knowledge_poll_seconds=0.2,
        **overrides,
    )
    live = LiveIndex(embedder, answerer_factory(clinic), settings.index_dir)
    live.install(seed_store)
    services = Services(
        settings=settings,
        db=db,
        clinic=clinic,
        triage=triage,
        answerer=live.current.answerer,
        rasa=StubRasa(),  # type: ignore[arg-type]
        knowledge=live,
    )
    live.subscribe(lambda version: setattr(services, "answerer", version.answerer))
    context = running_app(services)
    client = context.__enter__()
    if settings.staff_cookie_secure:
        client.base_url = "https://testserver"  # Secure cookies travel over https only
    return Staff(client, services, Accounts(db), ArticleStore(db), users, tokens), context


@pytest.fixture
def make_staff(
    tmp_path: Path, seeded, embedder, triage, clinic, seed_store
) -> Iterator[Callable[..., Staff]]:
    opened: list = []

    def make(**overrides) -> Staff:
        made, context = open_staff(
            tmp_path / f"app{len(opened)}", seeded, embedder, triage, clinic, seed_store, **overrides
        )
        opened.append(context)
        return made

    yield make
    for context in reversed(opened):
        context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def shared_staff(tmp_path_factory, seeded, embedder, triage, clinic, seed_store) -> Iterator[Staff]:
    """One app for a whole module of tests that change nothing (permission checks)."""
    made, context = open_staff(
        tmp_path_factory.mktemp("shared"), seeded, embedder, triage, clinic, seed_store
    )
    yield made
    context.__exit__(None, None, None)


@pytest.fixture
def staff(make_staff) -> Staff:
    return make_staff()
