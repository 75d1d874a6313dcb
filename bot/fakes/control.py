"""One HTTP endpoint to look into the fakes and switch them off and on (for the fakes process)."""

from __future__ import annotations

from typing import Protocol

from bot.fakes.http import FakeRequest, HttpFake, Reply


class Fake(Protocol):
    def start(self) -> object: ...
    def stop(self) -> None: ...
    def received(self) -> list[dict]: ...
    @property
    def is_up(self) -> bool: ...


class FakesControl(HttpFake):
    """`GET /received` -> {name: [items]}; `POST /<name>/down`, `POST /<name>/up`; `GET /` -> which are up;
    `POST /<name>/<action>` -> the fake's `act` (e.g. `POST /whatsapp/deliver`)."""

    def __init__(self, fakes: dict[str, Fake], port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__(port, host)
        self.fakes = fakes

    def respond(self, request: FakeRequest) -> Reply:
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and parts == ["received"]:
            return 200, {name: fake.received() for name, fake in self.fakes.items()}
        if request.method == "GET" and parts == [""]:
            return 200, {name: fake.is_up for name, fake in self.fakes.items()}
        switch = request.method == "POST" and len(parts) == 2 and parts[1] in ("up", "down")
        if switch and parts[0] in self.fakes:
            fake = self.fakes[parts[0]]
            if parts[1] == "up":
                fake.start()
            else:
                fake.stop()
            return 200, {parts[0]: fake.is_up}
        acting = request.method == "POST" and len(parts) == 2 and parts[0] in self.fakes
        if acting and hasattr(self.fakes[parts[0]], "act"):
            # A provider's own move, e.g. Meta delivering a patient's message to the app's webhook.
            return self.fakes[parts[0]].act(parts[1], request.json() or {})  # type: ignore[attr-defined]
        return 404, {"detail": "unknown control request"}
