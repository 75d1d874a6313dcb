"""Staff accounts in a running product, made the way a clinic makes them: with `python -m bot.staff`."""

from __future__ import annotations

from scripts.common import staff_api_token

PASSWORD = "a long test password"
_made: dict[tuple[int, str], str] = {}


def staff_token(product, role: str, username: str | None = None) -> str:
    """A personal API token of a `role` account in `product` (made once per product and user name)."""
    username = username or f"e2e-{role}"
    key = (id(product), username)
    if key not in _made:
        _made[key] = staff_api_token(product.environment(), role, username, PASSWORD, f"E2E {role.title()}")
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
