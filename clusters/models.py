"""Directors, virtual services and real servers, plus what happens to them (events, apply jobs).

The database holds *desired* state and history. Observed state (kernel table, health, connections) lives on
the directors and in Redis; only the few observed fields the pages sort and filter by are copied here.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from director import keys
from director.vrrp import DEFAULT_INTERVAL, DEFAULT_VRID

from . import choices as C
from .validators import validate_ifname, validate_port, validate_regex, validate_status_codes, validate_weight


def _version(address: str | None) -> int | None:
    """IP version of an address, or None when it is missing or invalid (its field reports that)."""
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


PAIR_SETTINGS = ("ha_preempt", "ha_interval", "ha_vrid")  # Director fields both sides of a pair share


class Director(models.Model):
    """A Linux box running IPVS and our agent; its public VIPs live on the WAN interface.

    The agent consumes the Celery queue `agent_queue` (default ``director.<name>``) and receives the whole
    desired state on every change; `desired_revision` counts changes, `applied_revision` what the agent
    reported back, so "in sync" is a comparison, not a flag someone must remember to clear.
    """

    name = models.SlugField(
        max_length=50, unique=True, help_text="Short name; the agent's queue is director.<name>."
    )
    description = models.CharField(max_length=200, blank=True)
    agent_queue = models.CharField(
        max_length=100, blank=True, help_text="Celery queue of the agent (default director.<name>)."
    )
    wan_interface = models.CharField(max_length=15, default="eth0", validators=[validate_ifname])
    lan_interface = models.CharField(max_length=15, blank=True, validators=[validate_ifname])
    lan_subnet = models.CharField(
        max_length=50,
        blank=True,
        help_text="Real-server LAN, masqueraded out of the WAN interface, e.g. 192.168.1.0/24.",
    )
    manage_ip_forward = models.BooleanField(
        default=True, help_text="Keep net.ipv4.ip_forward=1 (needed for NAT)."
    )
    masquerade = models.BooleanField(
        default=True, help_text="Masquerade the LAN subnet out of the WAN interface."
    )
    manage_vips = models.BooleanField(
        default=True, help_text="Put the virtual service addresses on the WAN interface."
    )
    peer = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Failover partner carrying the same services.",
    )
    # director pair (director/vrrp.py, pair.py): each agent runs keepalived's VRRP, no central side involved
    ha_address = models.GenericIPAddressField(
        null=True,
        blank=True,
        unpack_ipv4=True,
        help_text="This director's address for VRRP (keepalived's unicast adverts to the peer's); both of a pair need one.",
    )
    ha_priority = models.PositiveSmallIntegerField(
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(254)],
        help_text="VRRP priority (1-254): the higher one holds the VIPs.",
    )
    # the pair's protocol settings: both directors must agree (clean), and services.save() carries them to the peer
    ha_preempt = models.BooleanField(
        default=True,
        verbose_name="HA preempt",
        help_text="When the higher-priority director comes back it takes the VIPs back (else they stay put).",
    )
    ha_interval = models.FloatField(
        default=DEFAULT_INTERVAL,
        validators=[MinValueValidator(0.2), MaxValueValidator(10)],
        verbose_name="HA advert interval",
        help_text="Seconds between adverts (0.2-10); the BACKUP takes over after about 3 intervals of silence.",
    )
    ha_vrid = models.PositiveSmallIntegerField(
        default=DEFAULT_VRID,
        validators=[MinValueValidator(1), MaxValueValidator(255)],
        verbose_name="HA virtual router id",
        help_text="VRRP virtual router id (1-255), the same on both directors and unique on their network.",
    )
    ha_secret = models.CharField(
        max_length=100,
        blank=True,
        editable=False,
        help_text="The pair's VRRPv2 password (its first 8 characters); generated, the lower-id director's serves the pair.",
    )
    redis_password_sha256 = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="SHA-256 of the agent's Redis password (director/acl.py); the password itself is shown once "
        "by manage.py director_credentials and stored nowhere here.",
    )
    state = models.CharField(max_length=10, choices=C.AgentState.choices, default=C.AgentState.UNKNOWN)
    last_seen = models.DateTimeField(null=True, blank=True)
    desired_revision = models.PositiveIntegerField(default=0)
    applied_revision = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        """Every director gets a pair secret once, so pairing two needs no secret typed by anyone."""
        if not self.ha_secret:
            self.ha_secret = secrets.token_urlsafe(32)
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "ha_secret"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("director_detail", args=[self.pk])

    @property
    def queue(self) -> str:
        return self.agent_queue or keys.queue(self.name)

    def clean(self) -> None:
        if self.lan_subnet:
            try:
                net = ipaddress.ip_network(self.lan_subnet, strict=False)
            except ValueError as exc:
                raise ValidationError({"lan_subnet": f"Not a valid subnet: {exc}."}) from exc
            self.lan_subnet = str(net)
        if self.masquerade and not self.lan_subnet:
            raise ValidationError({"lan_subnet": "Masquerading needs the LAN subnet."})
        if self.peer_id and self.peer_id == self.pk:
            raise ValidationError({"peer": "A director cannot be its own peer."})
        if self.pk and self.peer_id:
            other = Director.objects.filter(peer=self).exclude(pk=self.peer_id).first()
            if other is not None:
                raise ValidationError({"peer": f"{other} already names this director as its peer."})
        peer = self.pair_peer()  # also when only the other side names us: the pair still needs our address
        if peer is not None:
            if self.peer_id and peer.peer_id not in (None, self.pk):
                raise ValidationError({"peer": f"{peer} is already paired with {peer.peer}."})
            if not self.ha_address:
                raise ValidationError(
                    {"ha_address": "A director with a failover peer needs its failover address."}
                )
            if not peer.ha_address:
                raise ValidationError({"peer": f"Give {peer} its failover address first."})
            if _version(self.ha_address) != _version(peer.ha_address):
                raise ValidationError(
                    {"ha_address": "Both directors of a pair need the same address family."}
                )
            if self.ha_address == peer.ha_address:
                raise ValidationError({"ha_address": f"{peer} already uses this failover address."})
            self._clean_pair_settings(peer)

    def _clean_pair_settings(self, peer: Director) -> None:
        """Two directors becoming a pair must already agree on preempt, interval and port; once paired, a
        change on either side is carried to the other by services.save(), so they cannot drift apart."""
        stored = Director.objects.filter(pk=self.pk).first() if self.pk else None
        already = stored is not None and getattr(stored.pair_peer(), "pk", None) == peer.pk
        if already:
            return
        for field in PAIR_SETTINGS:
            ours, theirs = getattr(self, field), getattr(peer, field)
            if ours != theirs:
                name = self._meta.get_field(field).verbose_name
                raise ValidationError(
                    {
                        field: f"{peer} has {name} {theirs}, this one {ours}: both directors of a pair need the same."
                    }
                )

    def pair_peer(self) -> Director | None:
        """The other director of the pair, whichever side named it (`peer` may be set on one side only)."""
        if self.peer_id:
            return self.peer
        return Director.objects.filter(peer=self).first() if self.pk else None

    def agent_status(self, now=None) -> str:
        """up / stale / down from the last heartbeat, as a pure function of time (healthchecks-style)."""
        if self.last_seen is None:
            return C.AgentState.UNKNOWN
        age = ((now or timezone.now()) - self.last_seen).total_seconds()
        if age <= settings.AGENT_STALE_AFTER:
            return C.AgentState.UP
        if age <= settings.AGENT_DOWN_AFTER:
            return C.AgentState.STALE
        return C.AgentState.DOWN

    @property
    def in_sync(self) -> bool:
        return self.applied_revision >= self.desired_revision


class VirtualService(models.Model):
    """An IPVS virtual service (``virtual=`` in ldirectord.cf) with its health-check settings.

    Check settings use ldirectord's names (checktype, service, request, receive, ...) and keepalived's
    extras (status codes, retries, rise/quorum), so both config formats import without loss.
    """

    director = models.ForeignKey(Director, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=100, blank=True)
    protocol = models.CharField(max_length=6, choices=C.Protocol.choices, default=C.Protocol.TCP)
    address = models.GenericIPAddressField(
        null=True, blank=True, unpack_ipv4=True, help_text="Virtual IP (empty for fwmark)."
    )
    port = models.PositiveIntegerField(null=True, blank=True, validators=[validate_port])
    fwmark = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(2**32 - 1)]
    )
    family = models.PositiveSmallIntegerField(
        choices=C.Family.choices,
        default=C.Family.IPV4,
        help_text="Address family; derived from the VIP, needed for fwmark.",
    )
    scheduler = models.CharField(max_length=6, choices=C.Scheduler.choices, default=C.Scheduler.WLC)
    sched_flags = models.JSONField(
        default=list,
        blank=True,
        help_text="Scheduler flags: sh-fallback, sh-port, mh-fallback, mh-port, ops.",
    )
    persistence = models.PositiveIntegerField(
        default=0, help_text="Persistence timeout in seconds; 0 = not persistent."
    )
    netmask = models.CharField(
        max_length=39, blank=True, help_text="Persistence granularity (IPv4 netmask or IPv6 prefix length)."
    )
    enabled = models.BooleanField(default=True)

    # Health checks (ldirectord names).
    checktype = models.CharField(max_length=10, choices=C.CheckType.choices, default=C.CheckType.NEGOTIATE)
    check_every = models.PositiveSmallIntegerField(
        default=0, help_text="checktype=N: connect checks, negotiate every Nth (0 = off)."
    )
    check_service = models.CharField(
        "service", max_length=12, choices=C.CheckService.choices, default=C.CheckService.NONE
    )
    request = models.CharField(max_length=500, blank=True)
    receive = models.CharField(max_length=500, blank=True, validators=[validate_regex])
    httpmethod = models.CharField(max_length=4, choices=C.HttpMethod.choices, default=C.HttpMethod.GET)
    virtualhost = models.CharField(max_length=253, blank=True)
    checkport = models.PositiveIntegerField(null=True, blank=True, validators=[validate_port])
    checkinterval = models.FloatField(
        default=5.0, validators=[MinValueValidator(0.1), MaxValueValidator(86400)]
    )
    checktimeout = models.FloatField(
        default=5.0, validators=[MinValueValidator(0.1), MaxValueValidator(3600)]
    )
    negotiatetimeout = models.FloatField(
        default=5.0, validators=[MinValueValidator(0.1), MaxValueValidator(3600)]
    )
    failurecount = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    quiescent = models.BooleanField(
        default=True, help_text="Failed real servers get weight 0 instead of being removed."
    )
    external_program = models.CharField(
        max_length=500,
        blank=True,
        help_text="For checktype=external: program run with v_ip v_port r_ip r_port.",
    )
    login = models.CharField(max_length=100, blank=True)
    passwd = models.CharField(max_length=100, blank=True)
    database = models.CharField(max_length=100, blank=True)
    secret = models.CharField(max_length=100, blank=True)
    verify_tls = models.BooleanField(default=False)
    # keepalived extras.
    expected_status = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_status_codes],
        help_text="HTTP status codes counted as up, e.g. 200,204 (empty: receive decides).",
    )
    retries = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    delay_before_retry = models.FloatField(default=1.0, validators=[MinValueValidator(0)])
    rise = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Successes in a row to come back up."
    )
    quorum = models.PositiveSmallIntegerField(
        default=1, help_text="Healthy real servers needed for the service to count as up."
    )
    hysteresis = models.PositiveSmallIntegerField(default=0)
    # Where the two daemons differ, the service says which one it behaves like (see director/policy.py).
    redirects = models.PositiveSmallIntegerField(
        default=7,
        validators=[MaxValueValidator(20)],
        help_text="HTTP redirects followed before the status and receive are judged "
        "(ldirectord follows 7, keepalived none).",
    )
    tcp_on_udp = models.BooleanField(
        "TCP connect on UDP",
        default=False,
        help_text="A connect check of a UDP service does a TCP handshake (keepalived TCP_CHECK) "
        "instead of a ping (ldirectord).",
    )
    fallback_rule = models.CharField(
        max_length=10,
        choices=C.FallbackRule.choices,
        default=C.FallbackRule.LDIRECTORD,
        help_text="When the fallback (sorry) server takes traffic. ldirectord: while no real server passes its "
        "check (a passing server with weight 0 counts). keepalived: while the live weight (weights of passing "
        "servers) is below quorum, with hysteresis; it then replaces the live servers.",
    )
    check_traffic_port = models.BooleanField(
        "check the traffic port",
        default=False,
        help_text="Check every real server on the port traffic goes to. Off: where the source daemon checked "
        "(ldirectord: a gate server's configured port, or the service's port for a server without one).",
    )
    start_down = models.BooleanField(
        "start down",
        default=False,
        help_text="A real server counts as failed until its first check passes (keepalived alpha).",
    )

    # Fallback ("sorry") server, added when every real server is down.
    fallback_address = models.GenericIPAddressField(null=True, blank=True, unpack_ipv4=True)
    fallback_port = models.PositiveIntegerField(null=True, blank=True, validators=[validate_port])
    fallback_forwarding = models.CharField(
        max_length=4, choices=C.Forwarding.choices, default=C.Forwarding.MASQ
    )

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["director__name", "address", "port", "fwmark"]
        # an external check runs a program as root on the director: its own permission, not every admin's
        permissions = [("change_external_check", "Can create or change external health-check commands")]
        constraints = [
            models.UniqueConstraint(
                fields=["director", "protocol", "address", "port"],
                condition=Q(fwmark__isnull=True),
                name="unique_vip_port_proto_per_director",
                violation_error_message="This director already has a virtual service on that address, port and protocol.",
            ),
            models.UniqueConstraint(
                fields=["director", "family", "fwmark"],
                condition=Q(fwmark__isnull=False),
                name="unique_fwmark_per_director",
                violation_error_message="This director already has a virtual service for that firewall mark.",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    def get_absolute_url(self) -> str:
        return reverse("service_detail", args=[self.pk])

    @property
    def label(self) -> str:
        """The name ipvsadm shows: TCP 172.16.10.52:80, FWM 1, TCP [2001:db8::1]:80."""
        return keys.service_label(self.protocol, self.address, self.port, self.fwmark, self.family)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.protocol == C.Protocol.FWMARK:
            if not self.fwmark:
                errors["fwmark"] = "A firewall-mark service needs a mark (1-4294967295)."
            if self.port:
                errors["port"] = "A firewall-mark service has no port: the mark selects the traffic."
            if self.address:
                errors["address"] = "A firewall-mark service has no address: the mark selects the traffic."
        else:
            if self.fwmark:
                errors["fwmark"] = "Only firewall-mark services take a mark."
            if not self.address:
                errors["address"] = "Enter the virtual IP address."
            else:
                try:
                    self.family = ipaddress.ip_address(self.address).version
                except ValueError:
                    pass  # the field validator already reported it
            if self.port is None:
                errors["port"] = "Enter a port between 1 and 65535."
        flags = list(self.sched_flags or [])
        known = set(C.SchedFlag.values)
        for flag in flags:
            if flag not in known:
                errors["sched_flags"] = f"Unknown scheduler flag {flag!r}; known: {', '.join(sorted(known))}."
        if any(f.startswith("sh-") for f in flags) and self.scheduler != C.Scheduler.SH:
            errors["sched_flags"] = "sh-fallback/sh-port only apply to the sh scheduler."
        if any(f.startswith("mh-") for f in flags) and self.scheduler != C.Scheduler.MH:
            errors["sched_flags"] = "mh-fallback/mh-port only apply to the mh scheduler."
        if "ops" in flags and self.protocol != C.Protocol.UDP:
            errors["sched_flags"] = "One-packet scheduling (ops) is only for UDP services."
        if self.netmask:
            try:
                if self.family == 6:
                    if not (
                        self.netmask.isascii() and self.netmask.isdigit() and 1 <= int(self.netmask) <= 128
                    ):
                        raise ValueError("an IPv6 persistence netmask is a prefix length 1-128")
                else:
                    ipaddress.IPv4Network(f"0.0.0.0/{self.netmask}")
            except ValueError as exc:
                errors["netmask"] = f"Not a valid netmask: {exc}."
        if self.fallback_address:
            if (
                _version(self.fallback_address) not in (None, self.family)
                and self.fallback_forwarding != C.Forwarding.IPIP
            ):
                errors["fallback_address"] = (
                    "The fallback server must be of the service's address family (or use ipip)."
                )
        if self.checktype == C.CheckType.EXTERNAL and not self.external_program:
            errors["external_program"] = "checktype=external needs the program to run."
        if errors:
            raise ValidationError(errors)


class RealServer(models.Model):
    """A backend (``real=`` in ldirectord.cf) with its admin state and the last observed health.

    admin_state is what the operator wants (active / draining / maintenance); health is what the director
    observed. The kernel weight is derived from both on the director, never stored here.
    """

    service = models.ForeignKey(VirtualService, on_delete=models.CASCADE, related_name="reals")
    address = models.GenericIPAddressField(unpack_ipv4=True)
    port = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(65535)], help_text="0 only for firewall-mark services."
    )
    forwarding = models.CharField(max_length=4, choices=C.Forwarding.choices, default=C.Forwarding.MASQ)
    weight = models.PositiveIntegerField(default=1, validators=[validate_weight])
    u_threshold = models.PositiveIntegerField(
        "upper threshold",
        default=0,
        validators=[MaxValueValidator(2**31 - 1)],
        help_text="Stop sending new connections above this many (0 = no limit).",
    )
    l_threshold = models.PositiveIntegerField(
        "lower threshold", default=0, validators=[MaxValueValidator(2**31 - 1)]
    )
    admin_state = models.CharField(max_length=12, choices=C.AdminState.choices, default=C.AdminState.ACTIVE)
    quiescent = models.BooleanField(
        "inhibit on failure",
        null=True,
        blank=True,
        default=None,
        help_text="Weight 0 instead of removal when this server fails (keepalived inhibit_on_failure); "
        "empty: the service's quiescent.",
    )
    check_port = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(65535)],
        help_text="Port the source daemon checked this server on when it is not the traffic port "
        "(0: the usual rule). Ignored when the service checks the traffic port.",
    )
    after_drain = models.CharField(
        max_length=12, choices=C.AfterDrain.choices, default=C.AfterDrain.NOTHING, blank=True
    )
    health = models.CharField(max_length=8, choices=C.Health.choices, default=C.Health.UNKNOWN)
    health_reason = models.CharField(max_length=200, blank=True)
    health_latency = models.FloatField(null=True, blank=True)
    health_changed = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service", "address", "port"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "address", "port"],
                name="unique_real_per_service",
                violation_error_message="This real server is already in the virtual service.",
            ),
            models.CheckConstraint(condition=Q(weight__lte=65535), name="weight_at_most_65535"),
            models.CheckConstraint(
                condition=Q(l_threshold__lte=F("u_threshold")) | Q(u_threshold=0),
                name="lower_threshold_below_upper",
            ),
        ]
        # host-wide views and actions look a real server up by its address across every service of a
        # director: without it the director page's host table probed each service's index (2,284 at issue
        # 17's size) for every address shown
        indexes = [models.Index(fields=["address"], name="realserver_address")]
        permissions = [
            ("operate_realserver", "Can drain, enable, put in maintenance and reweight real servers")
        ]

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in (self.address or "") else self.address
        return f"{host}:{self.port}"

    def get_absolute_url(self) -> str:
        return reverse("service_detail", args=[self.service_id]) + f"#real-{self.pk}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:  # the service may be unsaved yet (a bulk import validates before inserting)
            service = self.service
        except RealServer.service.RelatedObjectDoesNotExist:
            service = None
        if service is not None:
            fwmark = service.protocol == C.Protocol.FWMARK
            if not fwmark and not 1 <= (self.port or 0) <= 65535:
                errors["port"] = "Port must be between 1 and 65535."
            version = _version(self.address)
            if version:
                if version != service.family and self.forwarding != C.Forwarding.IPIP:
                    errors["address"] = (
                        f"An IPv{version} real server cannot sit behind an IPv{service.family} virtual service "
                        f"with {self.get_forwarding_display()} forwarding (only ipip tunnels mix families)."
                    )
        if self.u_threshold and self.l_threshold > self.u_threshold:
            errors["l_threshold"] = "The lower threshold must not exceed the upper threshold."
        if errors:
            raise ValidationError(errors)


class Event(models.Model):
    """One line of the audit and log stream: a check flip, an apply, a user action, a drift report.

    Events from directors carry `source_id` (director-generated, unique) so re-sending a buffered event
    after a Redis outage is harmless: the ingest ignores duplicates instead of double-counting.
    """

    time = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=10, choices=C.EventKind.choices)
    level = models.CharField(max_length=8, choices=C.Level.choices, default=C.Level.INFO)
    director = models.ForeignKey(
        Director, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    service = models.ForeignKey(
        VirtualService, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    server = models.ForeignKey(
        RealServer, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    source_id = models.CharField(max_length=64, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["kind", "-time"])]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.kind}: {self.message}"


class ApplyJob(models.Model):
    """One push of desired state to a director, so a page can show pending -> applied (or the error)."""

    director = models.ForeignKey(Director, on_delete=models.CASCADE, related_name="jobs")
    server = models.ForeignKey(
        RealServer, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    revision = models.PositiveIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=8, choices=C.JobStatus.choices, default=C.JobStatus.PENDING)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.director} r{self.revision} {self.status}"


class ApiToken(models.Model):
    """A bearer token for the JSON API and /metrics: it acts as its user, with that user's permissions.

    Only the SHA-256 of the secret is stored, so a database dump or a backup hands out no API access; the
    secret is shown once, by `manage.py create_token`. A request is matched by the hash of what it presents
    (an indexed equality lookup), so no secret is ever compared character by character. The 8-character
    prefix is stored in clear to tell tokens apart in the admin and to revoke one by name.
    """

    SECRET_PREFIX = "umw_"
    PREFIX_LEN = 8
    # last_used is written at most this often: a scrape every 15 s must not become a write every 15 s.
    TOUCH_EVERY = 60

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for, e.g. prometheus.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=PREFIX_LEN, db_index=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.DateTimeField(null=True, blank=True, help_text="When set, the token no longer works.")

    class Meta:
        ordering = ["-created"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'}, {self.user})"

    @staticmethod
    def hash(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str = "") -> tuple[ApiToken, str]:
        """A new token for `user`; returns it with the secret, which is not stored and cannot be recovered."""
        secret = cls.SECRET_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, key_hash=cls.hash(secret), prefix=secret[: cls.PREFIX_LEN]
        )
        return token, secret

    @classmethod
    def authenticate(cls, secret: str, now=None) -> ApiToken | None:
        """The live token whose hash matches `secret`, or None (unknown, revoked, or its user inactive)."""
        if not secret:
            return None
        token = (
            cls.objects.select_related("user")
            .filter(key_hash=cls.hash(secret), revoked__isnull=True, user__is_active=True)
            .first()
        )
        if token is not None:
            token.touch(now)
        return token

    def touch(self, now=None) -> None:
        """Record the use, conditionally, so concurrent requests and frequent scrapes cost one UPDATE a minute."""
        now = now or timezone.now()
        if self.last_used and (now - self.last_used).total_seconds() < self.TOUCH_EVERY:
            return
        ApiToken.objects.filter(pk=self.pk).filter(
            Q(last_used__isnull=True) | Q(last_used__lt=now - timedelta(seconds=self.TOUCH_EVERY))
        ).update(last_used=now)
        self.last_used = now
