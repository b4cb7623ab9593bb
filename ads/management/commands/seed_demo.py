"""python manage.py seed_demo [--password-file PATH]

Creates the demo advertiser, its member `demo` (its admin, not staff) and three campaigns
with their creatives (ads.seeding), and says what it created and what it found. Run again,
it changes nothing. A member created now gets a random password, written to PATH (mode
0600; default: demo-password.txt in the data dir, beside up.sh's admin-password.txt).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.shortcuts import resolve_url

from ads.seeding import demo_seed
from ops.commands import require_migrated


class Command(BaseCommand):
    help = "Create the demo advertiser, its member and campaigns (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password-file",
            type=Path,
            default=None,
            help="Where a newly created member's password is written "
            "(default: <data dir>/demo-password.txt).",
        )

    def handle(self, *args, password_file: Path | None, **options) -> None:
        require_migrated()
        password_file = password_file or Path(settings.DATA_DIR) / "demo-password.txt"
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            report = demo_seed(password=password)
            if report.member_created:
                # In the transaction: a file that cannot be written leaves no member
                # whose password nobody knows.
                password_file.parent.mkdir(parents=True, exist_ok=True)
                password_file.write_text(password + "\n")
                password_file.chmod(0o600)
        for line in report.created:
            self.stdout.write(f"created {line}")
        for line in report.found:
            self.stdout.write(f"found {line}")
        username = report.member.get_username()
        if report.member_created:
            where = f"its password is in {password_file}"
        elif password_file.is_file():
            where = f"its password is in {password_file} (unless changed since)"
        else:
            where = f"set its password with `python manage.py changepassword {username}`"
        self.stdout.write(f"Sign in at {resolve_url(settings.LOGIN_URL)} as {username!r}: {where}")
