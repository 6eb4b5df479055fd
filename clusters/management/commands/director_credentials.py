"""`manage.py director_credentials NAME [--rotate]`: the Redis password of a director's agent, shown once.

The agent logs in to Redis as `director.NAME` (its ACL: its own queue, stream and keys, nothing else; see
director/acl.py). This makes that user with a new random password, keeps only the password's SHA-256 in the
database (the central worker re-creates the user from it if Redis forgets it) and prints the password once,
with where it goes on the director. `--rotate` replaces existing credentials: the old password stops
working at once, so install the new one and restart the agent right after.
"""

from django.core.management.base import BaseCommand, CommandError

from clusters import services
from clusters.models import Director
from director import acl


class Command(BaseCommand):
    help = "Issue (or --rotate) the Redis password of a director's agent and print it once."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--rotate", action="store_true", help="replace existing credentials")

    def handle(self, *args, name, rotate, **options):
        director = Director.objects.filter(name=name).first()
        if director is None:
            raise CommandError(f"unknown director {name!r}")
        try:
            password = services.issue_credentials(director, rotate=rotate)
        except services.CredentialsExist:  # the service decides; the command names its own flag
            raise CommandError(
                f"{name} already has credentials; --rotate replaces them (the old ones stop working)"
            ) from None
        except Exception as exc:
            raise CommandError(f"cannot create the Redis user {acl.username(name)}: {exc}") from None
        self.stderr.write(
            f"Redis user {acl.username(name)}; the password below is shown only now. On the director:\n"
            f"  install -m 0600 /dev/stdin /etc/ultramonkey/redis.pass   # paste it, then Ctrl-D\n"
            f"  python -m director run --name {name} --redis-password-file /etc/ultramonkey/redis.pass ..."
        )
        self.stdout.write(password)
