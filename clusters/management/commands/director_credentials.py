"""`manage.py director_credentials NAME [--rotate]`: the Redis password of a director's agent, shown once.

The agent logs in to Redis as `director.NAME` (its ACL: its own queue, stream and keys, nothing else; see
director/acl.py). This makes that user with a new random password, keeps only the password's SHA-256 in the
database (the central worker re-creates the user from it if Redis forgets it) and prints the password once,
with where it goes on the director. `--rotate` replaces existing credentials: the old password stops
working at once, so install the new one and restart the agent right after.
"""

from django.core.management.base import BaseCommand, CommandError

from clusters import agents, services
from clusters import choices as C
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
        if director.redis_password_sha256 and not rotate:
            raise CommandError(
                f"{name} already has credentials; --rotate replaces them (the old ones stop working)"
            )
        password = acl.new_password()
        digest = acl.password_hash(password)
        try:
            agents.set_director_user(director.name, digest)
        except Exception as exc:
            raise CommandError(f"cannot create the Redis user {acl.username(name)}: {exc}") from None
        Director.objects.filter(pk=director.pk).update(redis_password_sha256=digest)
        services.record(
            C.EventKind.USER,
            f"{'rotated' if rotate else 'issued'} the agent's Redis credentials ({acl.username(name)})",
            director=director,
            level=C.Level.WARNING if rotate else C.Level.INFO,
        )
        self.stderr.write(
            f"Redis user {acl.username(name)}; the password below is shown only now. On the director:\n"
            f"  install -m 0600 /dev/stdin /etc/ultramonkey/redis.pass   # paste it, then Ctrl-D\n"
            f"  python -m director run --name {name} --redis-password-file /etc/ultramonkey/redis.pass ..."
        )
        self.stdout.write(password)
