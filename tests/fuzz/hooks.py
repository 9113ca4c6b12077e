"""schemathesis hooks for tests/fuzz_api.rs.

The fuzzer holds an admin token for a real systemd, so a few requests would take down
what it is testing instead of testing it. Just before such a request is sent, it is
rewritten into the same request for something that does not exist, whose answer (a
404) the checks still judge:

- a unit action on one of the container's own units (loaded when the run started, or
  shipped in /usr/lib/systemd/system), except the ones unitdeck refuses anyway (stop
  and disable of a protected unit, start, restart and enable of any name of a unit that
  takes the container down: 409) and reset-failed. A restart of unitdeck.service
  ends the server under test; a start of shutdown.target powers the container off; a
  restart of dbus.service cuts unitdeck off systemd for a moment (503s that say nothing
  about unitdeck). The units the test installs for the fuzzer (fuzz-*.service) and the
  ones the fuzzer creates through POST /api/v1/unit-files go through;
- a change of the override of one of the container's own units (PUT, DELETE, rollback):
  a memory limit or a new command on a system service is not what is under test. The
  protected ones go through (unitdeck refuses them: 409), so do previews;
- revoking the fuzzer's own token: every later request would be a 401;
- a notification channel's URL: its host and port become 127.0.0.1:9 (nothing listens
  there), so that neither a test message nor a notification leaves the machine.

Every failure the checks find stands (a log filter `grep` is text since a `(` in it, a
refused PCRE2 pattern then, failed the positive_data_acceptance check).

Environment (set by tests/fuzz_api.rs): UNITDECK_FUZZ_UNITS, a JSON file
{"unit name": protected}; UNITDECK_FUZZ_DOWN, a JSON list of every name (aliases
included) of the units that take the container down; UNITDECK_FUZZ_TOKEN_ID, the id of
the fuzzer's token.
"""

import json
import os
from urllib.parse import unquote, urlsplit, urlunsplit

import schemathesis

with open(os.environ["UNITDECK_FUZZ_UNITS"]) as f:
    SYSTEM_UNITS = json.load(f)
with open(os.environ["UNITDECK_FUZZ_DOWN"]) as f:
    DOWN_NAMES = set(json.load(f))
OWN_TOKEN = int(os.environ["UNITDECK_FUZZ_TOKEN_ID"])
UNIT_DIRS = ("/usr/lib/systemd/system", "/lib/systemd/system")
# Valid names that name nothing.
SPARED_UNIT = "fuzz-spared-system-unit.service"
SPARED_TOKEN = 2**62

# Routes that change a unit's override, by method.
OVERRIDE_CHANGES = {
    "/api/v1/units/{name}/override": ("PUT", "DELETE"),
    "/api/v1/units/{name}/override/rollback": ("POST",),
}

# A unit action with these is refused with 409 before systemd is asked.
REFUSED_ON_PROTECTED = ("stop", "disable")
# ...and one of these on a unit that takes the container down (any of its names).
REFUSED_ON_DOWN = ("start", "restart", "enable")


def is_system_unit(name):
    # Values taken from earlier answers (stateful links) may arrive percent-encoded.
    name = unquote(name)
    if name in SYSTEM_UNITS:
        return True
    files = [name]
    prefix, _, suffix = name.rpartition(".")
    if "@" in prefix:
        files.append(prefix.split("@", 1)[0] + "@." + suffix)
    return any(os.path.lexists(os.path.join(d, f)) for d in UNIT_DIRS for f in files)


def as_int(value):
    try:
        return int(str(value))
    except ValueError:
        return None


# Where channels made by the fuzzer post: this machine, a port nothing listens on.
LOCAL_SINK = "127.0.0.1:9"


def kept_local(url):
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return url
    return urlunsplit(("http", LOCAL_SINK, parts.path, parts.query, parts.fragment))


@schemathesis.hook
def before_call(context, case, kwargs):
    method, path = case.method.upper(), case.operation.path
    body = case.body if isinstance(case.body, dict) else None
    if path.startswith("/api/v1/notifications/channels") and body and isinstance(body.get("url"), str):
        body["url"] = kept_local(body["url"])
    params = case.path_parameters
    if not params:
        return
    if method == "POST" and path == "/api/v1/units/{name}/{action}":
        name, action = params.get("name"), params.get("action")
        if not isinstance(name, str) or not is_system_unit(name):
            return
        refused = (action in REFUSED_ON_PROTECTED and SYSTEM_UNITS.get(unquote(name), False)) or (
            action in REFUSED_ON_DOWN and unquote(name) in DOWN_NAMES
        )
        if not (refused or action == "reset-failed"):
            params["name"] = SPARED_UNIT
    elif path in OVERRIDE_CHANGES and method in OVERRIDE_CHANGES[path]:
        name = params.get("name")
        if isinstance(name, str) and is_system_unit(name) and not SYSTEM_UNITS.get(unquote(name), False):
            params["name"] = SPARED_UNIT
    elif method == "DELETE" and path == "/api/v1/tokens/{id}":
        if as_int(params.get("id")) == OWN_TOKEN:
            params["id"] = SPARED_TOKEN
