"""Start the whole product on one machine: the Rasa server and the clinic app, and stop both on Ctrl-C.

    python -m bot.launcher --model models/<hash>.tar.gz

Every setting comes from the one settings object (`bot.settings.Settings`: the environment, then `.env`);
the launcher only adds what the two processes must agree on. Rasa runs from its own Python 3.10
environment and listens on 127.0.0.1 only; the clinic app is the public surface. Outside production, when
no real SMS, e-mail or webhook notifier is configured, a third process runs the notification fakes.

The app's listening socket is opened here, before anything starts: a busy port is reported at once, and
the app (with its outbox) never starts on a port it cannot serve.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import ValidationError

from bot.fakes.process import NotificationFakes, fakes_wanted
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
QUIET = {
    "PYTHONWARNINGS": "ignore",  # known deprecation noise of Rasa's and TensorFlow's dependencies
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "RASA_TELEMETRY_ENABLED": "false",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LOG_LEVEL": "WARNING",
    # Rasa's JSON logs even in a terminal: scripts/rasa_server.py keeps those free of patient text.
    "FORCE_JSON_LOGGING": "1",
}


class StartError(Exception):
    """The product cannot start; the message says why in plain words."""


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StartError(
            f"port {port} on {host} is already in use (or not allowed): {error.strerror}"
        ) from error
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _port_free(port: int) -> None:
    _bind("127.0.0.1", port).close()


@dataclass
class Product:
    """The processes of a running assistant."""

    model: Path
    settings: Settings = field(default_factory=Settings)
    rasa_python: Path = Path(os.environ.get("ASSISTANT_RASA_VENV", ROOT / ".venv-rasa")) / "bin" / "python"
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_dir: Path | None = None
    fakes: NotificationFakes | None = None  # set when staff notifications go to the local fakes
    _env: dict[str, str] = field(default_factory=dict)
    _socket: socket.socket | None = None

    @property
    def port(self) -> int:
        return self.settings.port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "") else self.settings.host
        return f"http://{host}:{self.settings.port}"

    @property
    def rasa_url(self) -> str:
        return self.settings.rasa_url

    def environment(self) -> dict[str, str]:
        """The environment both processes share (made once: it holds the action token they agree on)."""
        if self._env:
            return self._env
        settings = self.settings
        env = {**os.environ, **QUIET}
        env.update(
            ASSISTANT_ENVIRONMENT=settings.environment,
            ASSISTANT_VAR_DIR=str(settings.var_dir),
            ASSISTANT_PORT=str(settings.port),
            ASSISTANT_RASA_URL=settings.rasa_url,
            ASSISTANT_ACTION_URL=f"http://127.0.0.1:{settings.port}/webhook",
            ASSISTANT_ACTION_TOKEN=settings.action_token,
            ASSISTANT_TRACKER_DIALECT=settings.tracker_dialect,
            ASSISTANT_TRACKER_URL=settings.tracker_url,
            ASSISTANT_TRACKER_DB=settings.tracker_db,
        )
        env.update(self.extra_env)
        if fakes_wanted(
            {"ASSISTANT_ENVIRONMENT": settings.environment, **_notifier_settings(settings), **env}
        ):
            # No real notifier configured: staff notifications go to local fakes, never to real people.
            self.fakes = NotificationFakes()
            env.update(self.fakes.app_environment())
        self._env = env
        return env

    def start(self, log_dir: Path | None = None) -> None:
        """Start Rasa and the app; return once both answer."""
        self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        self._socket = _bind(self.settings.host, self.settings.port)
        _port_free(int(self.settings.rasa_url.rsplit(":", 1)[-1]))
        env = self.environment()  # decides whether staff notifications go to the local fakes
        if self.fakes:
            self.processes["fakes"] = _spawn(self.fakes.command(), env, log_dir and log_dir / "fakes.log")
        self.start_rasa()
        fd = self._socket.fileno()
        self.processes["app"] = _spawn(
            [
                sys.executable, "-m", "uvicorn", "bot.main:create_app", "--factory", "--fd", str(fd),
                "--no-access-log", "--log-level", "warning",
            ],
            env,
            log_dir and log_dir / "app.log",
            pass_fds=(fd,),
        )  # fmt: skip
        self.wait_until_ready()

    def start_rasa(self) -> None:
        port = self.settings.rasa_url.rsplit(":", 1)[-1]
        self.processes["rasa"] = _spawn(
            [
                str(self.rasa_python), str(ROOT / "scripts" / "rasa_server.py"), "run",
                "--model", str(self.model), "--endpoints", "endpoints.yml",
                "--credentials", "credentials.yml",
                "--interface", "127.0.0.1", "--port", port, "--quiet",
            ],
            self.environment(),
            self.log_dir and self.log_dir / "rasa.log",
        )  # fmt: skip

    def wait_until_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        for name, url in self._health_urls():
            while not _answers(url):
                if self.processes[name].poll() is not None:
                    raise StartError(f"{name} exited with code {self.processes[name].returncode}")
                if time.monotonic() > deadline:
                    raise StartError(f"{name} did not start within {timeout:.0f}s")
                time.sleep(0.5)

    def _health_urls(self) -> list[tuple[str, str]]:
        urls = [("rasa", f"{self.rasa_url}/"), ("app", f"{self.url}/api/health")]
        if self.fakes and "fakes" in self.processes:
            urls.insert(0, ("fakes", f"{self.fakes.control_url}/"))
        return urls

    def stop_rasa(self) -> None:
        _terminate(self.processes.pop("rasa", None))

    def stop(self, already_signalled: bool = False) -> None:
        """Stop every process; `already_signalled`: they got Ctrl-C too, so first give them time."""
        for name in ("app", "rasa", "fakes"):
            _terminate(self.processes.pop(name, None), already_signalled)
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _notifier_settings(settings: Settings) -> dict[str, str]:
    return {
        "ASSISTANT_TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "ASSISTANT_SMTP_HOST": settings.smtp_host,
        "ASSISTANT_WEBHOOK_URL": settings.webhook_url,
    }


def _spawn(
    command: list[str], env: dict[str, str], log_file: Path | None, pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen:
    output = open(log_file, "ab") if log_file else None  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        pass_fds=pass_fds,
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


def _print_ready(product: Product) -> None:
    settings = product.settings
    print(f"\n  The assistant is ready:  {product.url}", flush=True)
    if settings.docs_enabled:
        print(f"  API documentation:       {product.url}/docs")
    print(f"  Staff admin:             {product.url}/admin   (first admin: python -m bot.staff create-admin)")
    if product.fakes:
        print(
            "  Staff alerts go to local fakes (nobody real is messaged): "
            f"{product.fakes.control_url}/received"
        )
    print("  Press Ctrl-C to stop.\n", flush=True)


def _problem(error: dict) -> str:
    """One settings problem in the words of the environment variable that fixes it."""
    message = str(error.get("msg", error)).removeprefix("Value error, ")
    field = "_".join(str(part) for part in error.get("loc", ()))
    return f"ASSISTANT_{field.upper()}: {message}" if field else message


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="trained Rasa model (.tar.gz)")
    args = parser.parse_args()
    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(_problem(e) for e in error.errors())
        print(f"Could not start: {problems}", file=sys.stderr)
        sys.exit(2)
    product = Product(model=args.model, settings=settings)
    # Ctrl-C reaches the whole process group: the children stop on their own, we only wait for them.
    stopping = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    failed = False
    try:
        print(
            "Starting the Rasa server and the clinic app (the first start takes about a minute)...",
            flush=True,
        )
        product.start()
        _print_ready(product)
        while not stopping.is_set() and all(p.poll() is None for p in product.processes.values()):
            stopping.wait(1)
    except StartError as error:
        failed = not stopping.is_set()
        if failed:
            print(f"\nCould not start: {error}", file=sys.stderr)
    finally:
        if not failed:
            print(
                "\nStopping..." if stopping.is_set() else "A process stopped unexpectedly; stopping.",
                flush=True,
            )
        # Ctrl-C went to the whole process group: let the children finish their own graceful shutdown
        # (a second signal would make them abort with a traceback).
        product.stop(already_signalled=signal.SIGINT in received)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
