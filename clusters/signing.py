"""The central side's signing key ring (director/signing.py), in the directory settings name.

Every desired state leaves through `services.send_to_agent`, which signs it here; nothing else holds the
private key. `manage.py signing_key` shows the public key for the directors' trust files and rotates it.
"""

from __future__ import annotations

from django.conf import settings

from director.signing import KeyRing


def keyring() -> KeyRing:
    return KeyRing(settings.UMW_SIGNING_DIR)


def sign(director_name: str, desired: dict, job_id: int | None) -> dict:
    """The signed envelope for `desired` (a DesiredState.to_dict()) sent to `director_name`'s agent."""
    return keyring().sign(director=director_name, revision=desired["revision"], state=desired, job_id=job_id)
