"""Shared by the measuring scripts: start the real product on free ports and talk to it."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx

from bot.launcher import Product
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ASSISTANT_SHARED_DIR", ROOT.parent / "shared"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Every measured patient comes from 127.0.0.1: the per-client limits and the per-source escalation cap
# would measure themselves, so they are lifted (the bench's flood section sets its own).
MEASURING_ENV = {
    "ASSISTANT_ENVIRONMENT": "test",
    "ASSISTANT_RATE_LIMIT_PER_CLIENT": "1000000/minute",
    "ASSISTANT_RATE_LIMIT_PER_CONVERSATION": "1000000/minute",
    "ASSISTANT_RATE_LIMIT_GLOBAL": "1000000/minute",
    "ASSISTANT_RATE_LIMIT_NEW_SESSIONS": "1000000/hour",
    "ASSISTANT_RATE_LIMIT_READS_PER_CLIENT": "1000000/minute",
    "ASSISTANT_ESCALATIONS_PER_SOURCE": "1000000",
}


@contextlib.contextmanager
def running_product(extra_env: dict[str, str] | None = None, measuring: bool = True) -> Iterator[Product]:
    """Both real processes (and the notification fakes) with a throwaway var/ folder; stopped on exit.

    `measuring`: lift the per-client limits (every measured patient is 127.0.0.1); False keeps the real ones.
    """
    model = Path(os.environ["ASSISTANT_RASA_MODEL"])
    with tempfile.TemporaryDirectory(prefix="assistant-") as var_dir:
        settings = Settings(
            _env_file=None, environment="test", port=free_port(), rasa_port=free_port(), var_dir=Path(var_dir)
        )
        learned = Path(os.environ.get("ASSISTANT_LEARNED_DIR", model.parent / "learned"))
        env = {**(MEASURING_ENV if measuring else {"ASSISTANT_ENVIRONMENT": "test"})}
        env |= {"ASSISTANT_LEARNED_DIR": str(learned), **(extra_env or {})}
        product = Product(model=model, settings=settings, extra_env=env)
        try:
            product.start(log_dir=Path(var_dir))
            yield product
        finally:
            product.stop()


class Chat:
    """One patient's conversation through `/api/chat`, keeping the session token the server issues."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.session_id: str | None = None
        self.token: str | None = None

    async def send(self, text: str, treatment_date: date | None = None) -> dict:
        body: dict = {"text": text, "session_id": self.session_id}
        if treatment_date is not None:
            body["treatment_date"] = treatment_date.isoformat()
        headers = {"X-Session-Token": self.token} if self.token else {}
        response = await self.client.post("/api/chat", json=body, headers=headers)
        response.raise_for_status()
        reply = response.json()
        if reply.get("session_token"):
            self.session_id, self.token = reply["session_id"], reply["session_token"]
        return reply


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB), read from /proc."""
    total_kb = 0
    for candidate in [pid, *_children(pid)]:
        with contextlib.suppress(OSError), open(f"/proc/{candidate}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{pid}/children") as children:
        found = [int(child) for child in children.read().split()]
        return found + [grandchild for child in found for grandchild in _children(child)]
    return []


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary_ms(latencies_s: list[float]) -> str:
    ms = [v * 1000 for v in latencies_s]
    return (
        f"p50 {statistics.median(ms):.0f} ms, p95 {percentile(ms, 0.95):.0f} ms, "
        f"p99 {percentile(ms, 0.99):.0f} ms"
        if ms
        else "no samples"
    )


def staff_api_token(
    env: dict[str, str], role: str, username: str, password: str, display_name: str | None = None
) -> str:
    """A personal staff API token of a new `role` account in the product whose environment is `env`, made
    the way a clinic makes one: `python -m bot.staff create-user … --token` (the password read from stdin)."""
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.staff",
            "create-user",
            "--username",
            username,
            "--role",
            role,
            "--display-name",
            display_name or f"{role.title()} {username}",
            "--password-stdin",
            "--token",
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if made.returncode != 0:
        raise RuntimeError(f"could not make a staff account: {made.stderr.strip()[-300:]}")
    return made.stdout.strip().splitlines()[-1]
