"""Staff accounts in a running product, made the way a clinic makes them: with `python -m bot.staff`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a long test password"
_made: dict[tuple[int, str], str] = {}


def staff_token(product, role: str, username: str | None = None) -> str:
    """A personal API token of a `role` account in `product` (made once per product and user name)."""
    username = username or f"e2e-{role}"
    key = (id(product), username)
    if key not in _made:
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
                f"E2E {role.title()}",
                "--password-stdin",
                "--token",
            ],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            env=product.environment(),
            cwd=ROOT,
            timeout=120,
        )
        assert made.returncode == 0, made.stderr
        _made[key] = made.stdout.strip().splitlines()[-1]
    return _made[key]


def staff_headers(product, role: str = "clinician") -> dict[str, str]:
    return {"Authorization": f"Bearer {staff_token(product, role)}"}


def api_token(db, role: str = "clinician") -> str:  # noqa: ANN001 - a bot.db.Database
    """A personal API token of a new `role` account in this database (in-process tests)."""
    from bot.staff.accounts import Accounts
    from bot.staff.audit import Actor

    accounts = Accounts(db)
    username = f"tests-{role}-{len(accounts.users()) + 1}"
    user = accounts.create_user(username, f"Tests {role.title()}", role, PASSWORD, Actor.system("tests"))
    return accounts.create_token(user.id, "tests", Actor.system("tests"))
