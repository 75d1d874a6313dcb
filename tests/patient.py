"""A patient's device talking to the chat API: it keeps the session the server issued, like the widget does.

`client` is anything with httpx's `post`/`get`: FastAPI's TestClient in-process, or an `httpx.Client` whose
`base_url` is the running product.
"""

from __future__ import annotations

from datetime import date


class Patient:
    def __init__(self, client) -> None:
        self.client = client
        self.session_id: str | None = None
        self.token: str | None = None

    def headers(self) -> dict[str, str]:
        return {"X-Session-Token": self.token} if self.token else {}

    def says(self, text: str, treatment_date: date | None = None) -> dict:
        body: dict = {"text": text, "session_id": self.session_id}
        if treatment_date:
            body["treatment_date"] = treatment_date.isoformat()
        response = self.client.post("/api/chat", json=body, headers=self.headers())
        assert response.status_code == 200, response.text
        reply = response.json()
        if reply.get("session_token"):
            self.session_id, self.token = reply["session_id"], reply["session_token"]
        assert reply["session_id"] == self.session_id, "the conversation never changes under the patient"
        return reply

    def messages(self, after: int = 0) -> dict:
        response = self.client.get(
            f"/api/conversations/{self.session_id}/messages", params={"after": after}, headers=self.headers()
        )
        assert response.status_code == 200, response.text
        return response.json()


def reply_text(reply: dict) -> str:
    return " ".join(message["text"] for message in reply["messages"]).lower()
