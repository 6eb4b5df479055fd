"""`manage.py create_token USERNAME [--name NAME]`: a bearer token for the API and /metrics.

The secret goes alone to stdout (``TOKEN=$(manage.py create_token bob)`` works) and is shown only this once:
the database keeps its SHA-256. The token acts with USERNAME's permissions, so give Prometheus a viewer.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from clusters import choices as C
from clusters import services
from clusters.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print its secret once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the token is for, e.g. prometheus")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive: its tokens would not work")
        token, secret = ApiToken.issue(user, name=name)
        services.record(
            C.EventKind.USER,
            f"API token {token.prefix}… ({name or 'unnamed'}) created for {username}",
            data={"action": "create_token", "token": token.prefix, "for": username},
        )
        self.stdout.write(secret)
        self.stderr.write(
            f"Token {token.prefix}… for {username}: shown once, only its hash is stored. "
            f"Revoke with `manage.py revoke_token {token.prefix}`."
        )
