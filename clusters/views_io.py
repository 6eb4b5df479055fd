"""Import and export pages: upload (or paste) -> preview -> confirm -> created; downloads per director.

The preview is a dry run of the real import (same parser, same full_clean, rolled back), so what it shows is
what confirming will do. Between preview and confirm the uploaded text waits in the user's session under a
random token: nothing is written before the confirm, and a token is good for one confirm only. Importing
needs the admin role's add permissions; exporting needs a login (enforced site-wide by
LoginRequiredMiddleware).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import choices as C
from .exporters import FILENAMES, FORMATS
from .exporters.fromdb import export_director
from .importers import FORMATS as IMPORT_FORMATS
from .importers import HostsMap, MemorySources, parse
from .importers.apply import apply_plan
from .importers.plan import MAX_FILE_BYTES, MAX_FILES, normalize_newlines
from .importers.preview import outlook
from .models import Director, Event

IMPORT_PERMS = ("clusters.add_virtualservice", "clusters.add_realserver")
SESSION_KEY = "io_pending_imports"
MAX_PENDING = 4  # previews kept per session; older ones are dropped
PREVIEW_ROWS = 200  # services shown in the preview table (all are checked and imported)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files at once: the configuration first, then the files it includes (by name)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data if d]
        return [single(data, initial)] if data else []


class ImportForm(forms.Form):
    director = forms.ModelChoiceField(Director.objects.all(), empty_label=None)
    format = forms.ChoiceField(
        choices=[("auto", "Detect")]
        + [(f, FILENAMES[f] if f != "ipvsadm" else "ipvsadm -S") for f in IMPORT_FORMATS]
    )
    files = MultipleFileField(
        required=False,
        label="Files",
        help_text="The configuration first; add the files it includes (execute=, include) to read them too.",
    )
    text = forms.CharField(
        required=False,
        label="…or paste the configuration",
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        max_length=MAX_FILE_BYTES,
    )
    hosts = forms.CharField(
        required=False,
        label="Host names (optional)",
        help_text="/etc/hosts-style lines for names the configuration uses. DNS is never queried.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        max_length=64 * 1024,
    )
    replace = forms.BooleanField(
        required=False, label="Replace the director's current virtual services (otherwise they are kept)"
    )

    def clean_text(self):
        """A pasted configuration always arrives with CRLF (browsers normalise textarea newlines so): LF it."""
        return normalize_newlines(self.cleaned_data["text"])[0]

    def clean(self):
        data = super().clean()
        uploads = data.get("files") or []
        if len(uploads) > MAX_FILES:
            raise forms.ValidationError(f"At most {MAX_FILES} files.")
        files: dict[str, str] = {}
        crlf: list[str] = []
        for upload in uploads:
            if upload.size > MAX_FILE_BYTES:
                raise forms.ValidationError(f"{upload.name} is larger than {MAX_FILE_BYTES // 1024} KiB.")
            name = Path(upload.name).name
            files[name], had_cr = normalize_newlines(upload.read().decode("utf-8", errors="replace"))
            if had_cr:
                crlf.append(name)
        if not files and not data.get("text", "").strip():
            raise forms.ValidationError("Choose a file or paste the configuration.")
        data["file_texts"] = files
        data["crlf_files"] = crlf
        return data


def _hosts(extra: str) -> HostsMap:
    """/etc/hosts of this server plus the lines the user typed (a local read; no resolver is involved)."""
    try:
        system = Path("/etc/hosts").read_text(errors="replace")[:MAX_FILE_BYTES]
    except OSError:
        system = ""
    return HostsMap.from_text(system + "\n" + extra, "hosts map (/etc/hosts and the lines given)")


def _parse(pending: dict):
    files = pending["files"]
    if pending["text"].strip():
        name, text = "pasted", pending["text"]
    else:
        name = next(iter(files))
        text = files[name]
    plan = parse(
        text, pending["format"], filename=name, hosts=_hosts(pending["hosts"]), sources=MemorySources(files)
    )
    for crlf in pending.get("crlf", ()):
        # once per file, not once per line: the file was read with its CRLF line ends as plain newlines
        plan.warn(crlf, 0, "Windows (CRLF) line ends: read as plain newlines")
    return plan


def _preview(request, plan, result, director, token: str, replace: bool):
    """The preview page: after the upload's dry run (token: confirm with it) and again when the confirm's real
    run refused (no token: the stored text is spent, upload again)."""
    return render(
        request,
        "clusters/io/preview.html",
        {
            "plan": plan,
            "services": [(s, outlook(s)) for s in plan.services[:PREVIEW_ROWS]],
            "result": result,
            "director": director,
            "token": token,
            "replace": replace,
        },
    )


def index(request):
    directors = Director.objects.all()
    can_import = request.user.has_perms(IMPORT_PERMS)
    return render(
        request,
        "clusters/io/index.html",
        {"directors": directors, "formats": FORMATS, "filenames": FILENAMES, "can_import": can_import},
    )


@permission_required(IMPORT_PERMS, raise_exception=True)
def import_upload(request):
    """The form; a valid POST parses, dry-runs and shows the preview with a confirm button."""
    form = ImportForm(request.POST or None, request.FILES or None, initial=request.GET.dict() or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        pending = {
            "director": d["director"].pk,
            "format": d["format"],
            "text": d["text"],
            "files": d["file_texts"],
            "crlf": d["crlf_files"],
            "hosts": d["hosts"],
            "replace": d["replace"],
        }
        plan = _parse(pending)
        result = apply_plan(plan, d["director"], replace=d["replace"], dry_run=True)
        token = ""
        if result.ok:
            token = secrets.token_urlsafe(16)
            stash = request.session.get(SESSION_KEY, {})
            while len(stash) >= MAX_PENDING:
                stash.pop(next(iter(stash)))
            stash[token] = pending
            request.session[SESSION_KEY] = stash
        return _preview(request, plan, result, d["director"], token, d["replace"])
    return render(request, "clusters/io/import.html", {"form": form})


@require_POST
@permission_required(IMPORT_PERMS, raise_exception=True)
def import_confirm(request):
    """Create what the preview showed (parsed again from the stored text, validated again)."""
    stash = request.session.get(SESSION_KEY, {})
    pending = stash.pop(request.POST.get("token", ""), None)
    request.session[SESSION_KEY] = stash
    if pending is None:
        messages.error(request, "That preview has expired or was already imported: upload the file again.")
        return redirect("io_import")
    director = get_object_or_404(Director, pk=pending["director"])
    plan = _parse(pending)
    result = apply_plan(plan, director, user=request.user, replace=pending["replace"])
    if not result.ok:
        return _preview(request, plan, result, director, "", pending["replace"])
    messages.success(
        request,
        f"Imported {len(result.created_services)} virtual services and {result.created_reals} real servers "
        f"into {director}; the director is being updated.",
    )
    return redirect("io_done", pk=director.pk)


def import_done(request, pk):
    director = get_object_or_404(Director, pk=pk)
    event = Event.objects.filter(director=director, kind=C.EventKind.IMPORT).first()
    services = director.services.prefetch_related("reals")
    return render(
        request, "clusters/io/done.html", {"director": director, "event": event, "services": services}
    )


def export(request, pk, fmt):
    if fmt not in FORMATS:
        raise Http404("unknown export format")
    director = get_object_or_404(Director, pk=pk)
    # check passwords and RADIUS secrets only for those who may change them
    redact = not request.user.has_perm("clusters.change_virtualservice")
    filename, text = export_director(director, fmt, redact=redact)
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    disposition = "inline" if request.GET.get("view") else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response
