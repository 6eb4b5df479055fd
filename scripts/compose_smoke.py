"""What scripts/test-compose.sh asks of the running compose stack, over HTTP as a user and a script would.

Standard library only (it runs with the host's python3, outside the image). Every wait is bounded; the first
unmet expectation exits 1 with what was expected and what was seen.

    python3 scripts/compose_smoke.py create BASE_URL ADMIN_PASSWORD API_TOKEN DIRECTOR_NAME
    python3 scripts/compose_smoke.py agent BASE_URL API_TOKEN DIRECTOR_NAME

`create`: the admin logs in, a demo director is made through the API. Then the script issues the director's
Redis credentials and starts the agent with them; `agent`: the agent connects, verifies the signed desired
state and reports why it cannot apply it (no IPVS in the engine's kernel).

BASE_URL is the web container's own address; requests carry `Host: localhost`, a name in ALLOWED_HOSTS, as a
browser on the host would send it for the published port.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def fail(message: str) -> None:
    print(f"compose smoke: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def step(message: str) -> None:
    print(f"compose smoke: {message}", flush=True)


class Client:
    def __init__(self, base: str, token: str | None = None):
        self.base = base.rstrip("/")
        self.token = token
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
        )

    def request(self, method: str, path: str, data=None, form: dict | None = None, headers=None):
        headers = {"Host": "localhost", **(headers or {})}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif data is not None:
            body = json.dumps(data).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=20) as resp:
                return resp.status, resp.headers, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read().decode("utf-8", "replace")

    def json(self, method: str, path: str, data=None, expect: int = 200):
        status, _, text = self.request(method, path, data=data)
        if status != expect:
            fail(f"{method} {path}: expected {expect}, got {status}: {text[:500]}")
        return json.loads(text) if text else None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def wait_for(what: str, probe, timeout: float):
    """Call probe() until it returns something truthy; at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last and last[0]:
            return last[0]
        time.sleep(1.0)
    fail(f"{what} within {timeout:.0f} s; last seen: {last[1] if last else None}")


def main(base: str, admin_password: str, token: str, director: str) -> None:
    # the dashboard page, as a person: the login form, the admin's login, the overview
    page = Client(base)
    status, _, text = page.request("GET", "/login/")
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text)
    if status != 200 or not match:
        fail(f"GET /login/: expected 200 with a login form, got {status}")
    status, headers, _ = page.request(
        "POST",
        "/login/",
        form={"username": "admin", "password": admin_password, "csrfmiddlewaretoken": match.group(1)},
    )
    if status != 302 or headers.get("Location") != "/":
        fail(
            f"admin login with the password from .env: expected 302 to /, got {status} {headers.get('Location')}"
        )
    status, _, text = page.request("GET", "/")
    if status != 200 or "New director" not in text:
        fail(f"GET / as admin: expected the overview page, got {status}")
    step("dashboard answers; the first admin (password from .env) logs in")

    # a demo director through the API: director, a virtual service, two real servers
    api = Client(base + "/api/v1", token)
    d = api.json(
        "POST",
        "/directors",
        {"name": director, "description": "compose demo", "lan_subnet": "192.168.1.0/24"},
        expect=201,
    )
    svc = api.json(
        "POST",
        f"/directors/{d['id']}/services",
        {"protocol": "tcp", "address": "172.16.10.52", "port": 80, "scheduler": "wlc"},
        expect=201,
    )
    for address in ("192.168.1.4", "192.168.1.5"):
        api.json("POST", f"/services/{svc['id']}/reals", {"address": address, "port": 80}, expect=201)
    step(f"demo director {director!r} created through the API (1 service, 2 real servers)")
    status, _, text = page.request("GET", f"/directors/{d['id']}/")
    if status != 200 or "172.16.10.52" not in text:
        fail(f"the director page of {director}: expected 200 showing the VIP, got {status}")


def agent_phase(base: str, token: str, director: str) -> None:
    """After its Redis credentials are in .env and the agent container runs with them."""
    api = Client(base + "/api/v1", token)
    d = next((x for x in api.json("GET", "/directors") if x["name"] == director), None)
    if d is None:
        fail(f"director {director!r} is not in GET /api/v1/directors")

    # the agent container: it connects (heartbeat -> agent up), receives the state, and says why it cannot apply
    def agent_up():
        got = api.json("GET", f"/directors/{d['id']}")
        return got["agent_status"] == "up", got["agent_status"]

    wait_for(f"agent of {director} up (heartbeat through Redis)", agent_up, 120)
    step("the agent container is connected (agent up)")

    def ipvs_event():
        events = api.json("GET", f"/events?director={director}&limit=200")
        hits = [e for e in events if "IPVS is not available in this kernel" in e["message"]]
        return (hits[0] if hits else None), [e["message"][:100] for e in events[:5]]

    event = wait_for("an event saying IPVS is missing", ipvs_event, 120)
    if event["level"] != "error" or "modprobe ip_vs" not in event["message"]:
        fail(f"the missing-IPVS event should be an error naming `modprobe ip_vs`: {event}")
    step(f"the agent reports the missing module: {event['message']!r}")

    def failed_apply():
        events = api.json("GET", f"/events?director={director}&kind=apply&limit=50")
        hits = [e for e in events if e["level"] == "error"]
        return (hits[0] if hits else None), [(e["level"], e["message"][:100]) for e in events[:5]]

    apply = wait_for("the demo's apply reported as failed", failed_apply, 120)
    if "rejected desired state" in apply["message"]:
        fail(f"the agent refused the dashboard's signed state (trust file?): {apply['message']}")
    step(f"the demo's apply is reported, not hidden: {apply['message']!r}")

    # the same, as Prometheus scrapes it: the agent is up and its latest apply failed
    scrape = Client(base, token)

    def metrics():
        status, _, text = scrape.request("GET", "/metrics")
        ones = [
            re.search(rf'^{name}\{{director="{director}"\}} 1(\.0)?$', text, re.M)
            for name in ("umw_agent_up", "umw_director_apply_failed")
        ]
        return status == 200 and all(ones), (status, text[:300])

    wait_for("/metrics showing the agent up and its apply failed", metrics, 60)
    step("/metrics: umw_agent_up 1 and umw_director_apply_failed 1 for the demo director")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "create":
        main(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "agent":
        agent_phase(*sys.argv[2:])
    else:
        sys.exit(__doc__)
