"""`python -m bot.staff`: staff accounts from the command line (the first admin, scripted set-ups).

    create-admin  --username NAME [--display-name "..."] [--password-stdin]   the first admin (once only)
    create-user   --username NAME --role ROLE [...]                         another account
    create-token  --username NAME [--name "..."]                             a personal API token
    unlock        --username NAME                                            after too many wrong passwords

The database is the app's (ASSISTANT_DATABASE_URL, default var/app.db), migrated first. Without
--password-stdin the password is asked for twice on the terminal; it is never an argument (shell history).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from pydantic import ValidationError

from bot.db import Database, migrate
from bot.settings import Settings
from bot.staff.accounts import AccountError, Accounts
from bot.staff.audit import Actor

CLI_ACTOR = Actor.system("command line")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: settings: {error.errors()[0].get('msg')}", file=sys.stderr)
        return 2
    migrate(settings.database_url)
    accounts = Accounts(Database(settings.database_url))
    try:
        return args.command(accounts, args)
    except AccountError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot.staff", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="command")
    for name, handler, role in (("create-admin", create_admin, "admin"), ("create-user", create_user, None)):
        sub = commands.add_parser(name, help=f"create {'the first admin' if role else 'a staff account'}")
        sub.add_argument("--username", required=True)
        sub.add_argument("--display-name", default="")
        if role is None:
            sub.add_argument("--role", required=True, choices=("admin", "editor", "clinician"))
        sub.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        sub.add_argument(
            "--token", action="store_true", help="also print a personal API token for the account"
        )
        sub.set_defaults(command=handler, role=role or None)
    token = commands.add_parser("create-token", help="a personal API token for an existing account")
    token.add_argument("--username", required=True)
    token.add_argument("--name", default="command line")
    token.set_defaults(command=create_token)
    unlock = commands.add_parser("unlock", help="unlock an account after too many wrong passwords")
    unlock.add_argument("--username", required=True)
    unlock.set_defaults(command=unlock_user)
    return parser


def create_admin(accounts: Accounts, args: argparse.Namespace) -> int:
    if accounts.has_admin():
        print("error: an admin exists already; sign in at /admin/users to add accounts", file=sys.stderr)
        return 1
    return create_user(accounts, args)


def create_user(accounts: Accounts, args: argparse.Namespace) -> int:
    password = _password(args.password_stdin)
    user = accounts.create_user(
        args.username, args.display_name or args.username, args.role, password, CLI_ACTOR
    )
    print(f"created {user.role} '{user.username}'")
    if args.token:
        print(accounts.create_token(user.id, "command line", CLI_ACTOR))
    return 0


def create_token(accounts: Accounts, args: argparse.Namespace) -> int:
    user = accounts.by_username(args.username)
    if user is None:
        raise AccountError(f"there is no user '{args.username}'")
    print(accounts.create_token(user.id, args.name, CLI_ACTOR))
    return 0


def unlock_user(accounts: Accounts, args: argparse.Namespace) -> int:
    user = accounts.by_username(args.username)
    if user is None:
        raise AccountError(f"there is no user '{args.username}'")
    accounts.unlock(user.id, CLI_ACTOR)
    print(f"unlocked '{user.username}'")
    return 0


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (at least 10 characters): ")
    if first != getpass.getpass("The same password again: "):
        raise AccountError("the two passwords differ")
    return first
