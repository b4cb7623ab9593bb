"""python manage.py ensure_admin --password-file PATH

Makes sure a superuser exists for a fresh install. When there is none, creates `admin`
with a random password written to PATH (mode 0600); otherwise changes nothing.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Create a superuser 'admin' with a random password when none exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password-file", type=Path, required=True)

    def handle(self, *args, username: str, password_file: Path, **options) -> None:
        users = get_user_model().objects
        if users.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(12)
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        users.create_superuser(username=username, email="", password=password)
        self.stdout.write(f"Created superuser {username!r}; its password is in {password_file}")
