"""Who may read what over HTTP: the grant a request's token carries (issue 29).

One aiohttp middleware (`access_middleware`) checks every request against one route table
(`ROUTES`) before any view runs. It is deny by default: a route that has no entry in `ROUTES`
is refused whoever asks, so a new view stays closed until someone decides who may see it.

- No access file (web.access_file): the worker listens on a loopback address only
  (`require_safe_binding`), and whoever reaches it is local: LOCAL_GRANT.
- An access file: a request carries a token (`Authorization: Bearer …`, or `?token=` for the wall
  screen's kiosk link); no token or an unknown one is a 401, a known one of a role too low or
  for another shop a 403. Refusals carry one sentence and no data.
- `/metrics` takes its own token (web.metrics_token), as Prometheus sends it; `/healthz` is open.

Other modules use only `grant_of(request)` and the `Grant` fields below.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Middleware
from faust.web import Request

from config.access import AccessList, is_loopback, load_access_file, secret_matches
from config.secret import Secret
from config.settings import ConfigError, WebSettings

Role = Literal["floor", "manager", "admin"]
RANK: dict[Role, int] = {"floor": 0, "manager": 1, "admin": 2}
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Grant:
    role: Role
    shops: frozenset[str] | None  # None: every shop

    def may_see(self, shop: str) -> bool:
        return self.shops is None or shop in self.shops

    @property
    def reveals_buyers(self) -> bool:
        """Only an admin sees real buyer ids; every other role sees them masked."""
        return self.role == "admin"


# Where the access middleware leaves a request's grant (a typed key: aiohttp warns on a string).
GRANT_KEY = web.RequestKey("kefu.grant", Grant)
# Without a token file the worker listens on 127.0.0.1 only, and whoever reaches it is local.
LOCAL_GRANT = Grant("admin", None)


# What a request the middleware never granted gets: no shop, buyers masked. The middleware grants
# every request a view serves (LOCAL_GRANT without an access file), so this only fails closed.
NO_GRANT = Grant("floor", frozenset())


def grant_of(request: Request) -> Grant:
    """The grant the access middleware checked for this request (LOCAL_GRANT without tokens)."""
    grant = request.get(GRANT_KEY)  # type: ignore[attr-defined]
    return grant if isinstance(grant, Grant) else NO_GRANT


# ---- The route table ---------------------------------------------------------------------------
Credential = Literal["open", "metrics", "role"]


@dataclass(frozen=True, slots=True)
class Rule:
    credential: Credential
    role: Role = "admin"  # the lowest role that may read it (credential "role")
    page: bool = False  # refusals as an HTML sentence instead of JSON


_FLOOR, _MANAGER, _ADMIN = Rule("role", "floor"), Rule("role", "manager"), Rule("role", "admin")
ROUTES: Mapping[str, Rule] = {
    "/healthz": Rule("open"),  # probes carry no token
    "/metrics": Rule("metrics"),
    "/floor": Rule("role", "floor", page=True),
    "/api/v1/floor": _FLOOR,
    "/api/v1/floor/stream": _FLOOR,
    "/api/v1/floor/trend": _FLOOR,
    "/report": Rule("role", "manager", page=True),
    "/api/v1/report": _MANAGER,
    "/details": Rule("role", "manager", page=True),
    "/api/v1/details": _MANAGER,
    "/api/v1/details.csv": _MANAGER,
    "/api/v1/config": _ADMIN,
}
# Every shop a request names; each must be in the grant (`shops` is the floor page's list).
SHOP_PARAMETERS = ("shop", "shops")

NO_TOKEN = "this address needs a token: send Authorization: Bearer <token> or add ?token=<token>"
UNKNOWN_TOKEN = "the token is not valid"
NO_METRICS_TOKEN = "/metrics needs the metrics token as Authorization: Bearer <token>"
NO_RULE = "this address is not open to anyone"
ROLE_TOO_LOW = "this token may not read this page"
OTHER_SHOP = "this token may not read that shop"
FOREIGN_HOST = (
    "without an access file this worker answers to localhost, 127.0.0.1 and [::1] only: a web page "
    "under another name (DNS rebinding) must not read it with this machine's rights"
)
BEARER = {"WWW-Authenticate": 'Bearer realm="kefu-pulse"'}


@dataclass(frozen=True, slots=True)
class Access:
    """What the middleware checks against: the access file's tokens (None: local only) and
    the metrics token (None: /metrics is open when local, refused when not)."""

    tokens: AccessList | None
    metrics_token: Secret | None

    def grant_for(self, token: str) -> Grant | None:
        if self.tokens is None:
            return LOCAL_GRANT
        entry = self.tokens.entry_for(token)
        return None if entry is None else Grant(entry.role, entry.shops)


# What a command other than `worker` installs: it never serves the pages, so it neither reads
# the access file (which only the worker's machine mounts) nor lets anyone in.
NOBODY = Access(AccessList(()), None)


def load_access(web_settings: WebSettings, environ: Mapping[str, str]) -> Access:
    tokens = None if web_settings.access_file is None else load_access_file(web_settings.access_file, environ)
    return Access(tokens, web_settings.metrics_token)


def require_safe_binding(web_settings: WebSettings) -> None:
    """Start-up: a worker without tokens listens on a loopback address only."""
    if web_settings.access_file is None and not is_loopback(web_settings.host):
        raise ConfigError(
            f"$.web.host: {web_settings.host} is reachable from other machines, but no access file "
            "gives tokens to read it; set web.access_file (or KEFU_ACCESS_FILE), or bind 127.0.0.1"
        )


def binding_line(web_settings: WebSettings) -> str | None:
    """The start-up line of a worker without tokens, or None when it has an access file."""
    if web_settings.access_file is not None:
        return None
    return (
        f"no access file (web.access_file): the web server listens on {web_settings.host} only, "
        "open to this machine without tokens"
    )


# ---- The middleware ----------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def access_middleware(access: Access) -> Middleware:
    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        rule = ROUTES.get(request.path)
        if rule is None and request.match_info.http_exception is not None:
            return await handler(request)  # 404/405 of an address nobody serves: nothing to protect
        refusal = _refusal(access, rule, request)
        if refusal is not None:
            return _refused(refusal, rule is not None and rule.page)
        return await handler(request)

    return check_access


@dataclass(frozen=True, slots=True)
class _Refusal:
    status: int
    sentence: str


def _refusal(access: Access, rule: Rule | None, request: web.Request) -> _Refusal | None:
    """None when `request` may be served; its grant is then left on the request."""
    if rule is None:
        return _Refusal(403, NO_RULE)
    if rule.credential == "open":
        return None
    # Local means "only this machine reaches it": a page from elsewhere whose name resolves to
    # 127.0.0.1 reaches it too, but names its own host.
    if access.tokens is None and not _loopback_host(request):
        return _Refusal(403, FOREIGN_HOST)
    if rule.credential == "metrics":
        return _metrics_refusal(access, request)
    token = presented_token(request)
    grant = LOCAL_GRANT if access.tokens is None else None if token is None else access.grant_for(token)
    if grant is None:
        return _Refusal(401, NO_TOKEN if token is None else UNKNOWN_TOKEN)
    if RANK[grant.role] < RANK[rule.role]:
        return _Refusal(403, ROLE_TOO_LOW)
    if not all(grant.may_see(shop) for shop in named_shops(request)):
        return _Refusal(403, OTHER_SHOP)
    request[GRANT_KEY] = grant
    return None


def _loopback_host(request: web.Request) -> bool:
    try:
        return is_loopback(request.url.host or "localhost")
    except ValueError:  # a Host no browser sends (`x:y:z`, a port past 65535): no loopback name
        return False


def _metrics_refusal(access: Access, request: web.Request) -> _Refusal | None:
    if access.metrics_token is None:
        return None if access.tokens is None else _Refusal(401, NO_METRICS_TOKEN)
    bearer = bearer_token(request)
    if bearer is None or not secret_matches(bearer, access.metrics_token):
        return _Refusal(401, NO_METRICS_TOKEN)
    return None


def bearer_token(request: web.Request) -> str | None:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


def presented_token(request: web.Request) -> str | None:
    """The Bearer credential, else the `token` query parameter (the kiosk link's); a token
    given twice in the query is no token."""
    if (bearer := bearer_token(request)) is not None:
        return bearer
    values = request.query.getall("token", [])
    return values[0] if len(values) == 1 and values[0] else None


def named_shops(request: web.Request) -> set[str]:
    """Every shop id the query can name: each `shop` as the API reads it, and split at commas as
    the floor page reads `shop` and `shops`; each must be in the grant."""
    values = [value for key in SHOP_PARAMETERS for value in request.query.getall(key, [])]
    split = {shop.strip() for value in values for shop in value.split(",") if shop.strip()}
    return split | set(request.query.getall("shop", []))


def _refused(refusal: _Refusal, page: bool) -> web.Response:
    headers = BEARER if refusal.status == 401 else None
    if page:
        body = f"<!doctype html><meta charset=utf-8><p>{html.escape(refusal.sentence)}</p>"
        return web.Response(status=refusal.status, text=body, content_type="text/html", headers=headers)
    return web.Response(
        status=refusal.status,
        text=json.dumps({"error": refusal.sentence}),
        content_type="application/json",
        headers=headers,
    )
