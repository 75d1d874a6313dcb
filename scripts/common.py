"""Shared by the measuring scripts: start the real product on free ports and talk to it."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bot.launcher import Product
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ASSISTANT_SHARED_DIR", ROOT.parent / "shared"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_product() -> Iterator[Product]:
    """Both real processes with a throwaway var/ folder; stopped on exit."""
    model = Path(os.environ["ASSISTANT_RASA_MODEL"])
    with tempfile.TemporaryDirectory(prefix="assistant-") as var_dir:
        # The launcher takes one Settings object (ports and var/ folder included).
        settings = Settings(
            _env_file=None, environment="test", port=free_port(), rasa_port=free_port(), var_dir=Path(var_dir)
        )
        product = Product(model=model, settings=settings, extra_env={"ASSISTANT_ENVIRONMENT": "test"})
        try:
            product.start(log_dir=Path(var_dir))
            yield product
        finally:
            product.stop()


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
