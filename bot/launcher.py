"""Start the whole product on one machine: the Rasa server and the clinic app, and stop both on Ctrl-C.

    python -m bot.launcher --model models/<hash>.tar.gz

Rasa runs from its own Python 3.10 environment and listens on 127.0.0.1 only; the clinic app is the public
surface. Both are real processes talking HTTP, exactly as in production. Outside production, when no real
SMS, e-mail or webhook notifier is configured, a third process runs the notification fakes (bot/fakes).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from dotenv import dotenv_values

from bot.fakes.process import NotificationFakes, fakes_wanted

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Product:
    """The two processes of a running assistant."""

    model: Path
    port: int = 8000
    rasa_port: int = 5005
    host: str = "127.0.0.1"
    var_dir: Path = ROOT / "var"
    rasa_python: Path = Path(os.environ.get("ASSISTANT_RASA_VENV", ROOT / ".venv-rasa")) / "bin" / "python"
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_dir: Path | None = None
    fakes: NotificationFakes | None = None  # set when staff notifications go to the local fakes
    _env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{'127.0.0.1' if self.host == '0.0.0.0' else self.host}:{self.port}"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def environment(self) -> dict[str, str]:
        """The environment both processes share (made once: it holds the action token they agree on)."""
        if self._env:
            return self._env
        env = dict(os.environ)
        env.setdefault("ASSISTANT_ACTION_TOKEN", secrets.token_urlsafe(24))
        env.setdefault("ASSISTANT_STAFF_TOKEN", secrets.token_urlsafe(24))
        env.setdefault("ASSISTANT_TRACKER_DIALECT", "sqlite")
        env.setdefault("ASSISTANT_TRACKER_URL", "")
        env.setdefault("ASSISTANT_TRACKER_DB", str(self.var_dir / "rasa-tracker.db"))
        env.update(
            ASSISTANT_VAR_DIR=str(self.var_dir),
            ASSISTANT_PORT=str(self.port),
            ASSISTANT_RASA_URL=self.rasa_url,
            ASSISTANT_ACTION_URL=f"http://127.0.0.1:{self.port}/webhook",
            RASA_TELEMETRY_ENABLED="false",
            SQLALCHEMY_SILENCE_UBER_WARNING="1",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        env.update(self.extra_env)
        if fakes_wanted({**dotenv_values(ROOT / ".env"), **env}):
            # No real notifier configured: staff notifications go to local fakes, never to real people.
            self.fakes = NotificationFakes()
            env.update(self.fakes.app_environment())
        self._env = env
        return env

    def start(self, log_dir: Path | None = None) -> None:
        """Start Rasa and the app; return once both answer."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        env = self.environment()  # decides whether staff notifications go to the local fakes
        if self.fakes:
            self.processes["fakes"] = _spawn(self.fakes.command(), env, log_dir and log_dir / "fakes.log")
        self.start_rasa()
        self.processes["app"] = _spawn(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bot.main:create_app",
                "--factory",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            self.environment(),
            log_dir and log_dir / "app.log",
        )
        self.wait_until_ready()

    def start_rasa(self) -> None:
        self.processes["rasa"] = _spawn(
            [
                str(self.rasa_python),
                "-m",
                "rasa",
                "run",
                "--model",
                str(self.model),
                "--endpoints",
                "endpoints.yml",
                "--credentials",
                "credentials.yml",
                "--interface",
                "127.0.0.1",
                "--port",
                str(self.rasa_port),
            ],
            self.environment(),
            self.log_dir and self.log_dir / "rasa.log",
        )

    def wait_until_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        for name, url in self._health_urls():
            while not _answers(url):
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} exited with code {self.processes[name].returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not start within {timeout:.0f}s")
                time.sleep(0.5)

    def _health_urls(self) -> list[tuple[str, str]]:
        urls = [("app", f"{self.url}/api/health"), ("rasa", f"{self.rasa_url}/")]
        if self.fakes and "fakes" in self.processes:
            urls.append(("fakes", f"{self.fakes.control_url}/"))
        return urls

    def stop_rasa(self) -> None:
        _terminate(self.processes.pop("rasa", None))

    def stop(self, already_signalled: bool = False) -> None:
        """Stop every process; `already_signalled`: they got Ctrl-C too, so first give them time."""
        for name in ("app", "rasa", "fakes"):
            _terminate(self.processes.pop(name, None), already_signalled)


def _spawn(command: list[str], env: dict[str, str], log_file: Path | None) -> subprocess.Popen:
    output = open(log_file, "ab") if log_file else None  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT if output else None
    )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _terminate(process: subprocess.Popen | None, already_signalled: bool = False) -> None:
    """Stop a child gracefully (SIGTERM), killing it only if it does not stop within 15 s."""
    if process is None:
        return
    try:
        if not already_signalled:
            process.terminate()
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _print_staff_access(product: Product) -> None:
    """Where a developer finds the staff API token and what the notification fakes received."""
    if "ASSISTANT_STAFF_TOKEN" not in os.environ:
        print(f"Staff API (/admin) token for this run: {product.environment()['ASSISTANT_STAFF_TOKEN']}")
    if product.fakes:
        print(f"Staff notifications go to local fakes: {product.fakes.control_url}/received")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="trained Rasa model (.tar.gz)")
    parser.add_argument("--host", default=os.environ.get("ASSISTANT_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ASSISTANT_PORT", 8000)))
    parser.add_argument("--rasa-port", type=int, default=int(os.environ.get("ASSISTANT_RASA_PORT", 5005)))
    args = parser.parse_args()
    product = Product(model=args.model, host=args.host, port=args.port, rasa_port=args.rasa_port)
    # Ctrl-C reaches the whole process group: the children stop on their own, we only wait for them.
    stopping = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    try:
        print("Starting the Rasa server and the clinic app (first start takes about a minute)...", flush=True)
        product.start()
        print(
            f"\nThe assistant is ready: {product.url}  (API docs: {product.url}/docs)\nPress Ctrl-C to stop.",
            flush=True,
        )
        _print_staff_access(product)
        while not stopping.is_set() and all(p.poll() is None for p in product.processes.values()):
            stopping.wait(1)
    except (RuntimeError, TimeoutError) as error:
        if not stopping.is_set():
            print(f"Could not start: {error}. See the messages above.", file=sys.stderr)
            sys.exit(1)
    finally:
        farewell = "\nStopping..." if stopping.is_set() else "A process stopped unexpectedly; stopping."
        print(farewell, flush=True)
        # Ctrl-C went to the whole process group: let the children finish their own graceful shutdown
        # (a second signal would make them abort with a traceback).
        product.stop(already_signalled=signal.SIGINT in received)

if __name__ == "__main__":
    main()
