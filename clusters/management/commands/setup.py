"""`manage.py setup`: roles, the first admin (password printed once), optionally the demo."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clusters.demo import load_demo
from clusters.roles import ensure_groups


class Command(BaseCommand):
    help = "Create the viewer/operator/admin groups, a first admin user, and (with --demo) the classic demo."

    def add_arguments(self, parser):
        parser.add_argument("--admin", default="admin", help="username of the first admin")
        parser.add_argument("--password", default=None, help="password (default: generated and printed once)")
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            default=None,
            help="take the password from this environment variable (compose: kept off the command line)",
        )
        parser.add_argument(
            "--demo",
            metavar="DIRECTOR",
            default=None,
            help="load the classic two-real-server HTTP + VNC setup on this director",
        )

    def handle(self, *args, admin, password, password_env, demo, **options):
        if password_env:
            password = os.environ.get(password_env, "")
            if not password:
                raise CommandError(
                    f"--password-env {password_env}: that environment variable is not set or empty"
                )
        groups = ensure_groups()
        User = get_user_model()
        if not User.objects.filter(username=admin).exists():
            if password:
                # the same validators as a password change (settings.AUTH_PASSWORD_VALIDATORS)
                try:
                    validate_password(password, User(username=admin))
                except ValidationError as exc:
                    raise CommandError(f"--password refused: {' '.join(exc.messages)}") from exc
            chosen = bool(password)
            password = password or secrets.token_urlsafe(12)
            user = User.objects.create_superuser(admin, "", password)
            user.groups.add(groups["admin"])
            if chosen:  # the operator chose it: never echo it into logs
                self.stdout.write(
                    self.style.SUCCESS(f"Created admin user {admin!r} with the password given.")
                )
            else:
                self.stdout.write(
                    self.style.SUCCESS(f"Created admin user {admin!r} with password: {password}")
                )
                self.stdout.write("(shown once: change it in the admin or with `manage.py changepassword`)")
        else:
            self.stdout.write(f"Admin user {admin!r} exists; password unchanged.")
        if demo:
            director, created = load_demo(demo)
            self.stdout.write(
                f"Demo on director {director.name}: {'created' if created else 'already there'}."
            )
