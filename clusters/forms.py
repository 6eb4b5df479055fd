"""Forms for directors, virtual services and real servers, plus the log filter.

Validation lives on the models (clean() and constraints), so the forms stay declarations; what they add is
grouping (fieldsets a template can loop over) and the parent a nested object belongs to, fixed by the page's
URL. Saving is not theirs: a valid form's instance goes to services.save(), which records who changed what
and pushes the new desired state, exactly like a one-click operation.
"""

from __future__ import annotations

import ipaddress

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from director import conntable, keys

from . import choices as C
from . import services
from .models import PAIR_SETTINGS, Director, Event, RealServer, VirtualService


class GroupedModelForm(forms.ModelForm):
    """A ModelForm with fieldsets, one complaint per field, and its parent (if any) taken from `initial` only.

    `parent` names the foreign key the URL decides (the director of a new virtual service, the service of a
    new real server): the field is disabled, so a posted value is ignored and the one given as `initial`
    (or the instance's own) is used, whatever a crafted POST says.
    """

    fieldsets: tuple[tuple[str, tuple[str, ...]], ...] = ()
    parent: str = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.parent:
            self.fields[self.parent].disabled = True

    def add_error(self, field, error):
        """One complaint per field: once a value failed to parse, the model's "missing" about it is noise."""
        if field is None and hasattr(error, "error_dict") and self._errors:
            kept = {
                f: e for f, e in error.error_dict.items() if f == NON_FIELD_ERRORS or f not in self._errors
            }
            if not kept:
                return
            error = ValidationError(kept)
        super().add_error(field, error)

    def grouped(self):
        """[(title, [bound fields])] for the template; fields not named in a fieldset come last."""
        named = {f for _, fs in self.fieldsets for f in fs}
        groups = [(title, [self[f] for f in fs if f in self.fields]) for title, fs in self.fieldsets]
        rest = [self[f] for f in self.fields if f not in named]
        if rest:
            groups.append(("Other", rest))
        return groups


def _names(fieldsets) -> list[str]:
    return [name for _, names in fieldsets for name in names]


DIRECTOR_FIELDSETS = (
    ("Director", ("name", "description", "agent_queue")),
    ("Failover pair", ("peer", "ha_address", "ha_priority", "ha_preempt", "ha_interval", "ha_vrid")),
    (
        "Network",
        ("wan_interface", "lan_interface", "lan_subnet", "manage_ip_forward", "masquerade", "manage_vips"),
    ),
)


PAIR_DEFAULTED = ("ha_priority", *PAIR_SETTINGS)


class PreemptSelect(forms.NullBooleanSelect):
    """A choice rather than a checkbox: a post without it keeps the default instead of turning preempt off."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [
            ("true", "take the VIPs back when the higher priority returns"),
            ("false", "leave them with the current MASTER"),
        ]


class DirectorForm(GroupedModelForm):
    ha_preempt = forms.NullBooleanField(
        required=False,
        widget=PreemptSelect,
        label=Director._meta.get_field("ha_preempt").verbose_name,
        help_text=Director._meta.get_field("ha_preempt").help_text,
    )

    class Meta:
        model = Director
        fields = _names(DIRECTOR_FIELDSETS)

    fieldsets = DIRECTOR_FIELDSETS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        peers = Director.objects.all()
        if self.instance.pk:
            peers = peers.exclude(pk=self.instance.pk)
        self.fields["peer"].queryset = peers
        for name in PAIR_DEFAULTED:  # only pairs use them: a form without them keeps the defaults
            self.fields[name].required = False

    def clean(self):
        data = super().clean()
        for name in PAIR_DEFAULTED:
            if name in data and data[name] is None:
                data[name] = Director._meta.get_field(name).default
        return data


VS_FIELDSETS = (
    (
        "Service",
        (
            "director",
            "name",
            "protocol",
            "address",
            "port",
            "fwmark",
            "family",
            "scheduler",
            "sched_flags",
            "persistence",
            "netmask",
            "enabled",
        ),
    ),
    (
        "Health check",
        (
            "checktype",
            "check_every",
            "check_service",
            "request",
            "receive",
            "httpmethod",
            "virtualhost",
            "checkport",
            "checkinterval",
            "checktimeout",
            "negotiatetimeout",
            "failurecount",
            "quiescent",
            "external_program",
            "verify_tls",
        ),
    ),
    ("Check credentials", ("login", "passwd", "database", "secret")),
    ("keepalived", ("expected_status", "retries", "delay_before_retry", "rise", "quorum", "hysteresis")),
    (
        "ldirectord or keepalived behaviour",
        ("fallback_rule", "redirects", "tcp_on_udp", "check_traffic_port", "start_down"),
    ),
    ("Fallback (sorry) server", ("fallback_address", "fallback_port", "fallback_forwarding")),
)


class VirtualServiceForm(GroupedModelForm):
    sched_flags = forms.MultipleChoiceField(
        choices=C.SchedFlag.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="sh-*/mh-* only with the sh/mh scheduler; ops only for UDP.",
    )

    class Meta:
        model = VirtualService
        fields = _names(VS_FIELDSETS)
        widgets = {
            "passwd": forms.PasswordInput(render_value=True),
            "secret": forms.PasswordInput(render_value=True),
        }

    fieldsets = VS_FIELDSETS
    parent = "director"


class RealServerForm(GroupedModelForm):
    class Meta:
        model = RealServer
        fields = [
            "service", "address", "port", "forwarding", "weight", "u_threshold", "l_threshold", "quiescent",
            "check_port",
        ]  # fmt: skip
        # The page the form is on decides the service (`parent`); it stays a field so the uniqueness
        # constraint, which names it, is still validated.
        widgets = {"service": forms.HiddenInput}

    fieldsets = (
        ("Real server", ("service", "address", "port", "forwarding", "weight")),
        ("Thresholds", ("u_threshold", "l_threshold")),
        ("Health check", ("quiescent", "check_port")),
    )
    parent = "service"


class HostActionForm(forms.Form):
    address = forms.GenericIPAddressField(unpack_ipv4=True)
    action = forms.ChoiceField(choices=[(a, a) for a in services.HOST_ACTIONS])


class LogFilterForm(forms.Form):
    """Filters of the logs page; every field optional, an invalid one is simply ignored."""

    director = forms.ModelChoiceField(Director.objects.all(), required=False, empty_label="any director")
    service = forms.ModelChoiceField(
        VirtualService.objects.select_related("director"), required=False, empty_label="any service"
    )
    server = forms.CharField(required=False, label="Real server address")
    kind = forms.ChoiceField(choices=[("", "any kind")] + list(C.EventKind.choices), required=False)
    level = forms.ChoiceField(choices=[("", "any level")] + list(C.Level.choices), required=False)

    def filter(self, qs):
        if not self.is_valid():
            return qs
        data = self.cleaned_data
        if data["director"]:
            qs = qs.filter(director=data["director"])
        if data["service"]:
            qs = qs.filter(service=data["service"])
        if data["server"]:
            try:  # PostgreSQL's inet column refuses to compare with a non-address: no event matches one
                address = str(ipaddress.ip_address(data["server"].strip()))
            except ValueError:
                return qs.none()
            qs = qs.filter(server__address=address)
        if data["kind"]:
            qs = qs.filter(kind=data["kind"])
        if data["level"]:
            qs = qs.filter(level=data["level"])
        return qs

    @staticmethod
    def events():
        return Event.objects.select_related("director", "service", "server", "user").order_by("-id")


class ConnFilterForm(forms.Form):
    """Filters of the connection table, kept in the page's URL. The agent's own parser
    (director.conntable.Filters) checks them here too, so the page and the agent agree on what is valid."""

    service = forms.ModelChoiceField(VirtualService.objects.none(), required=False, empty_label="any service")
    client = forms.CharField(
        required=False, max_length=60, help_text="address or prefix, e.g. 172.16.10.0/24"
    )
    real = forms.CharField(
        required=False, max_length=60, label="Real server", help_text="address or address:port"
    )
    state = forms.CharField(required=False, max_length=20, help_text="e.g. ESTABLISHED, TIME_WAIT")
    port = forms.IntegerField(required=False, min_value=1, max_value=65535, help_text="virtual or real port")
    limit = forms.IntegerField(
        required=False, min_value=1, max_value=conntable.SHOW_MAX, widget=forms.HiddenInput
    )

    def __init__(self, director: Director, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = director.services.all()

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        service = data.get("service")
        try:
            conntable.Filters.parse(
                keys.service_key_for(service) if service else None,
                data.get("client", ""),
                data.get("real", ""),
                data.get("state", ""),
                data.get("port"),
            )
        except ValueError as exc:
            name, _, message = str(exc).partition(": ")
            self.add_error(name if name in self.fields else None, message or str(exc))
        data["state"] = (data.get("state") or "").strip().upper()
        return data
