"""Two app processes sharing one database: a publish on one is answered by the other within seconds.

Each instance has its own index folder (as on two machines), so the second one builds the new version
itself from the release it finds in the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.common import staff_api_token
from tests.conftest import free_port, learned_cache
from tests.staff_users import PASSWORD

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MARKER = "Mineral powder is the kindest choice once the clinic says your skin is ready."
QUESTION = "can I wear makeup after microneedling?"


class Instance:
    def __init__(self, name: str, folder: Path, database: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "ASSISTANT_ENVIRONMENT": "test",
            "ASSISTANT_VAR_DIR": str(folder / name),
            "ASSISTANT_DATABASE_URL": f"sqlite:///{database}",
            "ASSISTANT_SECRET_KEY": "shared-by-both-instances-for-this-test",
            "ASSISTANT_LEARNED_DIR": str(learned_cache()),
            "ASSISTANT_RASA_PORT": str(free_port()),  # no Rasa: these requests do not need it
            "ASSISTANT_KNOWLEDGE_POLL_SECONDS": "0.5",
        }
        log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bot.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the app process exited"
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError("the app did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def instances(tmp_path_factory) -> Iterator[tuple[Instance, Instance]]:
    folder = tmp_path_factory.mktemp("instances")
    database = folder / "shared.db"
    first = Instance("a", folder, database)
    try:
        first.wait_until_ready()  # the first one migrates and seeds the shared database
        second = Instance("b", folder, database)
        try:
            second.wait_until_ready()
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


def token(instance: Instance, role: str) -> dict[str, str]:
    made = staff_api_token(instance.env, role, f"two-{role}", PASSWORD)
    return {"Authorization": f"Bearer {made}"}


def test_a_publish_on_one_instance_is_live_on_the_other(instances) -> None:
    first, second = instances
    editor, clinician = token(first, "editor"), token(first, "clinician")
    article = httpx.get(
        f"{first.url}/admin/articles/makeup-after-treatment", headers=editor, timeout=10
    ).json()
    head = article["head"]
    opening, rest = head["body"].split("\n\n", 1)
    draft = {key: head[key] for key in ("title", "topic", "stage", "days", "source_section")}
    saved = httpx.put(
        f"{first.url}/admin/articles/makeup-after-treatment",
        json={**draft, "body": f"{opening} {MARKER}\n\n{rest}", "base_version": head["version"]},
        headers=editor,
        timeout=10,
    ).json()
    version = saved["head_version"]
    httpx.post(
        f"{first.url}/admin/articles/makeup-after-treatment/submit", json={"version": version}, headers=editor
    ).raise_for_status()
    before = httpx.get(f"{second.url}/admin/knowledge", headers=clinician, timeout=10).json()
    review = httpx.get(
        f"{first.url}/admin/articles/makeup-after-treatment/review", headers=clinician, timeout=120
    )
    assert review.json()["passed"], "the clinician looks at the safety gate's report first"

    started = time.monotonic()
    published = httpx.post(
        f"{first.url}/admin/articles/makeup-after-treatment/publish",
        json={"version": version},
        headers=clinician,
        timeout=120,
    )
    assert published.status_code == 200, published.text
    publish_seconds = time.monotonic() - started
    target = httpx.get(f"{first.url}/admin/knowledge", headers=clinician, timeout=10).json()[
        "release_content_hash"
    ]
    while True:
        state = httpx.get(f"{second.url}/admin/knowledge", headers=clinician, timeout=10).json()
        if state["content_hash"] == target:
            break
        assert time.monotonic() - started < 30, "the second instance did not pick up the new version"
        time.sleep(0.2)
    picked_up = time.monotonic() - started
    print(f"\npublish request {publish_seconds:.2f} s; live on the second instance after {picked_up:.2f} s")

    assert state["content_hash"] != before["content_hash"] and state["in_step"]
    for instance in (first, second):
        tried = httpx.post(
            f"{instance.url}/admin/knowledge/try", json={"question": QUESTION}, headers=clinician, timeout=60
        ).json()
        answer = next(message for message in tried["reply"] if message["kind"] == "answer")
        assert MARKER in answer["text"], instance.url
        assert f"makeup-after-treatment v{version}" in answer["sources"]
