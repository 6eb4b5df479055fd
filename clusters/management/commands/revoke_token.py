"""`manage.py revoke_token PREFIX`: stop an API token from working (the row stays, for the audit trail)."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from clusters import choices as C
from clusters import services
from clusters.models import ApiToken


class Command(BaseCommand):
    help = "Revoke the live API token whose secret starts with PREFIX (the 8 characters the admin shows)."

    def add_arguments(self, parser):
        parser.add_argument("prefix")

    def handle(self, *args, prefix, **options):
        prefix = prefix[: ApiToken.PREFIX_LEN]
        tokens = list(ApiToken.objects.filter(prefix=prefix, revoked__isnull=True).select_related("user"))
        if not tokens:
            raise CommandError(f"no live token starts with {prefix!r}")
        if len(tokens) > 1:
            names = ", ".join(f"#{t.pk} {t.name or 'unnamed'} ({t.user})" for t in tokens)
            raise CommandError(
                f"{len(tokens)} live tokens start with {prefix!r}: {names}; revoke in the admin"
            )
        token = tokens[0]
        # conditional: a concurrent revoke keeps its own time and we do not log twice
        if ApiToken.objects.filter(pk=token.pk, revoked__isnull=True).update(revoked=timezone.now()):
            services.record(
                C.EventKind.USER,
                f"API token {token.prefix}… ({token.name or 'unnamed'}) of {token.user} revoked",
                data={"action": "revoke_token", "token": token.prefix, "for": token.user.get_username()},
            )
        self.stdout.write(f"Revoked token {token.prefix}… ({token.name or 'unnamed'}) of {token.user}.")
