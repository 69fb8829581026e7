"""The control plane's HTTP guard: who may call what, from which page, under which host name.

Every request passes, in order:

1. **Host**: the ``Host`` header must name this machine's loopback (``127.0.0.1``, ``localhost``,
   ``[::1]``) or a host the control plane listens on, so a page whose DNS name was rebound to
   127.0.0.1 (``Host: evil.example``) is refused.
2. **Origin**: a request a browser sends from another site (``Origin`` not this server, or
   ``Sec-Fetch-Site: cross-site`` on anything but a read) is refused: no cross-site ``POST /api/stop``.
3. **Credential**: ``Authorization: Bearer <token>``, or the dashboard's cookie (HttpOnly,
   SameSite=Strict), set by ``POST /login``. A browser asking for a page without one is sent
   to ``/login``; anything else gets a 401.
4. **Role**: ``admin`` may do anything, ``read`` only read (GET), a ``replica`` only reach
   the paths given as ``replica_paths`` (the registry, which checks the rest).

A refusal is ``{"error": "..."}`` with 401 or 403 and an audit record. Handlers find the
caller's :class:`~minga.security.Identity` with :func:`identity_of`.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from minga.security._audit import AuditLog
from minga.security._tokens import Credentials, Identity, Role

__all__ = ["COOKIE", "HttpGuard", "identity_of", "record_refusal", "refuse"]

COOKIE = "minga_token"
"""The dashboard's cookie: the token, HttpOnly and SameSite=Strict."""

_COOKIE_AGE = 30 * 86400
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
# typed request keys where aiohttp has them (3.14 on), plain strings before
_IDENTITY: Any = (
    web.RequestKey("minga_identity", Identity) if hasattr(web, "RequestKey") else "minga_identity"
)
_GUARD: Any = web.RequestKey("minga_guard", object) if hasattr(web, "RequestKey") else "minga_guard"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def identity_of(request: web.Request) -> Identity | None:
    """Who sent ``request``, as the guard established; ``None`` when no guard runs (a registry
    served on its own, say)."""
    found = request.get(_IDENTITY)
    return found if isinstance(found, Identity) else None


def record_refusal(request: web.Request, why: str, *, area: str = "http") -> None:
    """Write the refusal of ``request`` to the audit log, when a guard runs."""
    guard = request.get(_GUARD)
    if isinstance(guard, HttpGuard):
        guard.audit_refusal(request, why, area=area)


def refuse(request: web.Request, status: int, why: str, *, area: str = "http") -> web.Response:
    """A ``{"error": why}`` answer with ``status``, recorded in the audit log when a guard runs."""
    record_refusal(request, why, area=area)
    return web.json_response({"error": why}, status=status)


def _hostname(host: str) -> str:
    """``host`` of a ``Host`` header (``127.0.0.1:7070``, ``[::1]:7070``), lower-cased, no port."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HttpGuard:
    """The checks above over ``credentials``; refusals go to ``audit``. :attr:`cookie` names the
    dashboard's cookie.

    ``hosts`` adds names the ``Host`` header may carry beside the loopback ones;
    ``public_paths`` are prefixes served without a credential (the login page, static assets);
    ``page_paths`` prefixes where a browser without a credential is sent to the login page.
    """

    def __init__(
        self,
        credentials: Credentials,
        audit: AuditLog | None = None,
        *,
        hosts: Iterable[str] = (),
        public_paths: Iterable[str] = (),
        page_paths: Iterable[str] = (),
        replica_paths: Iterable[str] = (),
    ) -> None:
        self.cookie = COOKIE
        self.credentials = credentials
        self.audit = audit
        self.hosts = _LOOPBACK | {h.lower().strip("[]") for h in hosts if h not in ("", "0.0.0.0", "::")}
        self.public_paths = ("/login", "/logout", *public_paths)
        self.page_paths = tuple(page_paths)
        self.replica_paths = tuple(replica_paths)

    # -- the audit trail ------------------------------------------------------------------------

    def audit_refusal(self, request: web.Request, why: str, *, area: str = "http") -> None:
        if self.audit is None:
            return
        who = identity_of(request)
        self.audit.record(
            area=area,
            who=who.name if who is not None else "anonymous",
            source=request.remote or "?",
            what=f"{request.method} {request.rel_url.path}",
            why=why,
        )

    # -- the checks ------------------------------------------------------------------------------

    def _site_refusal(self, request: web.Request) -> str | None:
        host = _hostname(request.host)
        if host not in self.hosts:
            return (
                f"the Host header {request.host[:100]!r} does not name this control plane "
                "(a DNS rebinding is refused): use http://127.0.0.1"
            )
        origin = request.headers.get("Origin")
        if origin is not None:
            try:
                parts = urlsplit(origin)
                same = parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()
            except ValueError:
                same = False
            if not same:
                return f"a request from the page {origin[:100]!r} is refused: only this dashboard may call the API"
        if request.method not in _SAFE and request.headers.get("Sec-Fetch-Site") == "cross-site":
            return "a cross-site request is refused: only this dashboard may call the API"
        return None

    def _token(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return request.cookies.get(COOKIE) or None

    def _role_refusal(self, who: Identity, request: web.Request) -> str | None:
        path = request.rel_url.path
        if who.role is Role.ADMIN:
            return None
        if who.role is Role.READ:
            if request.method in _SAFE:
                return None
            return f"the read-only token cannot {request.method} {path}: use the admin token"
        if any(path.startswith(p) for p in self.replica_paths):
            return None
        return f"a replica's credential only reaches the registry, not {path}"

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request[_GUARD] = self
        path = request.rel_url.path
        why = self._site_refusal(request)
        if why is not None:
            return refuse(request, 403, why)
        if any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.public_paths):
            return await handler(request)
        token = self._token(request)
        who = self.credentials.identify(token)
        if who is None:
            if (
                request.method == "GET"
                and any(path.startswith(p) for p in self.page_paths)
                and ("text/html" in request.headers.get("Accept", ""))
            ):
                raise web.HTTPSeeOther(f"/login?next={quote(request.rel_url.path_qs, safe='/')}")
            why = (
                "invalid token: use the one in minga's home (the CLI does), or log in again"
                if token
                else "authentication required: send Authorization: Bearer <token> (the CLI reads it from minga's home)"
            )
            return refuse(request, 401, why)
        request[_IDENTITY] = who
        why = self._role_refusal(who, request)
        if why is not None:
            return refuse(request, 403, why)
        return await handler(request)

    # -- the dashboard's login -------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """``GET /login`` (the form), ``POST /login`` (sets the cookie), ``POST /logout``."""
        return [
            web.get("/login", self._login_page),
            web.post("/login", self._login),
            web.post("/logout", self._logout),
        ]

    async def _login_page(self, request: web.Request) -> web.Response:
        return _login_html(_next(request.query.get("next")), "")

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        token = str(form.get("token", "")).strip()
        target = _next(str(form.get("next", "")) or request.query.get("next"))
        who = self.credentials.identify(token)
        if who is None or who.role is Role.REPLICA:
            why = "this token is not valid here: use the admin or read-only token from minga's home"
            self.audit_refusal(request, why)
            return _login_html(target, why, status=401)
        resp = web.HTTPSeeOther(target)
        resp.set_cookie(COOKIE, token, max_age=_COOKIE_AGE, path="/", httponly=True, samesite="Strict")
        raise resp

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        resp = web.HTTPSeeOther("/login")
        resp.del_cookie(COOKIE, path="/")
        raise resp


def _next(raw: str | None) -> str:
    """Where to go after logging in: a path on this server, never another site."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/dashboard/"
    return raw


def _login_html(target: str, error: str, *, status: int = 200) -> web.Response:
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>minga · log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px system-ui,sans-serif;background:#0f1419;color:#e6e6e6;display:grid;place-items:center;height:100vh;margin:0}}
form{{background:#1a2029;padding:2rem;border-radius:8px;width:26rem}}input{{width:100%;box-sizing:border-box;padding:.5rem;margin:.5rem 0 1rem}}
.error{{color:#ff7b72}}code{{color:#9ecbff}}</style></head>
<body><form method="post" action="/login">
<h1>minga</h1>{message}
<label for="token">Token (<code>minga token</code> prints it)</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
<input type="hidden" name="next" value="{html.escape(target)}">
<button type="submit">Log in</button>
</form></body></html>
"""
    return web.Response(
        text=page, content_type="text/html", status=status, headers={"Cache-Control": "no-store"}
    )
