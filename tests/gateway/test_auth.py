"""Per-route authentication, performed against a real gateway and a real replica: each refusal
(its status, its JSON message, its audit record), the accepted path, and the subject header."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from minga.errors import UsageError
from minga.gateway import Gateway, StaticSource
from minga.gateway._auth import AuthRefused, RouteAuth
from minga.security import AuditLog, read_audit
from minga.spec import GatewaySpec, JwtSpec, RouteAuthSpec, RouteSpec
from support import ServerProcess

ISSUER = "https://issuer.test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
API_KEY = "k3y-for-ci"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-7",
        "iss": ISSUER,
        "aud": "shop",
        "iat": now,
        "exp": now + 300,
        "scope": "orders:read orders:write",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def rs256(key: rsa.RSAPrivateKey = KEY, **changes: Any) -> str:
    return jwt.encode(claims(**changes), key, algorithm="RS256", headers={"kid": "k1"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], secret: bytes | None) -> str:
    """A token built by hand, as an attacker would (PyJWT refuses to sign these)."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims()).encode())
    signature = (
        hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret is not None else b""
    )
    return signing_input + "." + _b64(signature)


@pytest.fixture
async def gateway(tmp_path: Path, replicas: Callable[..., list[ServerProcess]]) -> AsyncIterator[Gateway]:
    (a,) = replicas("a")
    jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}))
    (tmp_path / "orders.pem").write_bytes(PUBLIC_PEM)
    (tmp_path / "hs.secret").write_text("a-shared-secret-of-32-bytes-long!\n")
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    routes = [
        RouteSpec.model_validate(
            {
                "path": "/jwks",
                "service": "shop",
                "strip_prefix": True,
                "auth": {
                    "jwt": {
                        "algorithms": ["RS256"],
                        "jwks_file": "jwks.json",
                        "issuer": ISSUER,
                        "audience": "shop",
                        "scopes": ["orders:write"],
                    }
                },
            }
        ),
        RouteSpec.model_validate(
            {
                "path": "/pem",
                "service": "shop",
                "strip_prefix": True,
                "auth": {"jwt": {"algorithms": ["RS256"], "pem_files": ["orders.pem"]}},
            }
        ),
        RouteSpec.model_validate(
            {
                "path": "/hs",
                "service": "shop",
                "strip_prefix": True,
                "auth": {"jwt": {"algorithms": ["HS256"], "secret_file": "hs.secret"}},
            }
        ),
        RouteSpec.model_validate(
            {"path": "/keys", "service": "shop", "strip_prefix": True, "auth": {"api_keys": {"ci": digest}}}
        ),
        RouteSpec(path="/open", service="shop", strip_prefix=True),
    ]
    spec = GatewaySpec(port=0, routes=routes)
    source = StaticSource({"shop": [f"127.0.0.1:{a.port}"]})
    async with Gateway(spec, source, audit=AuditLog.in_home(tmp_path), base=tmp_path) as gw:
        yield gw


async def call(
    gw: Gateway, path: str, **headers: str
) -> tuple[int, dict[str, Any] | None, aiohttp.typedefs.LooseHeaders]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gw.url}{path}", data=b"hi", headers=headers) as r,
    ):
        doc = await r.json() if r.content_type == "application/json" else None
        return r.status, doc, r.headers


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def refused(gw: Gateway, path: str, status: int, message: str, **headers: str) -> None:
    got, doc, _ = await call(gw, path, **headers)
    assert got == status, (path, doc)
    assert doc == {"error": {"status": status, "message": message}}


async def test_jwt_refusals_each_with_its_reason_and_audit_record(gateway: Gateway, tmp_path: Path) -> None:
    gw = gateway
    await refused(gw, "/jwks/echo", 401, "authentication required: send Authorization: Bearer <JWT>")
    await refused(gw, "/jwks/echo", 401, "the token has expired", **bearer(rs256(exp=int(time.time()) - 120)))
    await refused(
        gw, "/jwks/echo", 401, "the token is not valid yet (nbf)", **bearer(rs256(nbf=int(time.time()) + 600))
    )
    await refused(
        gw,
        "/jwks/echo",
        401,
        "the token is not for this audience (expected shop)",
        **bearer(rs256(aud="billing")),
    )
    await refused(
        gw,
        "/jwks/echo",
        401,
        f"the token is not from the expected issuer ({ISSUER})",
        **bearer(rs256(iss="https://evil.test")),
    )
    await refused(gw, "/jwks/echo", 401, "the token has no exp claim", **bearer(rs256(exp=None)))
    await refused(gw, "/jwks/echo", 401, "the token's signature does not verify", **bearer(rs256(OTHER_KEY)))
    await refused(
        gw, "/jwks/echo", 403, "the token lacks the scope orders:write", **bearer(rs256(scope="orders:read"))
    )
    none = handmade({"alg": "none", "typ": "JWT"}, None)
    await refused(
        gw,
        "/jwks/echo",
        401,
        "the token's algorithm 'none' is not accepted here (accepted: RS256)",
        **bearer(none),
    )
    # algorithm confusion: HS256 "signed" with the RSA public key the route verifies with
    confused = handmade({"alg": "HS256", "typ": "JWT", "kid": "k1"}, PUBLIC_PEM)
    for path in ("/jwks/echo", "/pem/echo"):
        await refused(
            gw,
            path,
            401,
            "the token's algorithm 'HS256' is not accepted here (accepted: RS256)",
            **bearer(confused),
        )
    # and an HS256 route does not take an RS256 token
    await refused(
        gw,
        "/hs/echo",
        401,
        "the token's algorithm 'RS256' is not accepted here (accepted: HS256)",
        **bearer(rs256()),
    )
    await refused(gw, "/jwks/echo", 401, "the bearer token is not a JWT", **bearer("not.a-token"))
    records = [r for r in read_audit(tmp_path) if r.area == "gateway"]
    assert len(records) == 13
    assert records[1].why == "the token has expired" and records[1].who == "anonymous"
    assert records[1].what == "POST /jwks/echo" and records[1].source == "127.0.0.1"
    assert records[7].why == "the token lacks the scope orders:write" and records[7].who == "user-7"


async def test_accepted_tokens_reach_the_service_with_their_subject(gateway: Gateway, tmp_path: Path) -> None:
    gw = gateway
    forged = {"X-Minga-Subject": "admin"}
    for path, token in (
        ("/jwks/echo", rs256()),
        ("/jwks/echo", rs256(exp=int(time.time()) - 5)),  # within the 30 s leeway
        ("/pem/echo", rs256(aud=None)),  # a token naming an audience needs a route that expects one
        ("/hs/echo", jwt.encode(claims(aud=None), "a-shared-secret-of-32-bytes-long!", algorithm="HS256")),
    ):
        status, _, headers = await call(gw, path, **bearer(token), **forged)
        assert status == 200, path
        assert headers["X-Seen-Subject"] == "user-7"  # the client's own X-Minga-Subject was dropped
    status, _, headers = await call(gw, "/open/echo", **forged)
    assert status == 200 and headers["X-Seen-Subject"] == ""
    assert [r for r in read_audit(tmp_path) if r.area == "gateway"] == []


async def test_api_keys_are_checked_against_their_hash(gateway: Gateway, tmp_path: Path) -> None:
    gw = gateway
    await refused(gw, "/keys/echo", 401, "authentication required: send X-API-Key")
    await refused(gw, "/keys/echo", 401, "the API key is not known", **{"X-API-Key": "k3y-for-cj"})
    status, _, headers = await call(gw, "/keys/echo", **{"X-API-Key": API_KEY, "X-Minga-Subject": "admin"})
    assert status == 200 and headers["X-Seen-Subject"] == "apikey:ci"
    (record,) = [r for r in read_audit(tmp_path) if r.area == "gateway" and "not known" in r.why]
    assert record.who == "anonymous" and record.what == "POST /keys/echo"
    assert API_KEY not in (tmp_path / "audit.log").read_text()


def test_a_route_cannot_mix_shared_secret_and_public_key_algorithms() -> None:
    with pytest.raises(ValidationError, match="either HS"):
        JwtSpec(algorithms=["RS256", "HS256"], pem_files=["k.pem"], secret_file="s")
    with pytest.raises(ValidationError, match="none"):
        JwtSpec.model_validate({"algorithms": ["none"], "pem_files": ["k.pem"]})


def test_a_short_shared_secret_stops_the_gateway_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "short.secret").write_text("too-short\n")
    route = RouteSpec.model_validate(
        {"path": "/hs", "service": "shop", "auth": {"jwt": {"algorithms": ["HS256"], "secret_file": "short.secret"}}}
    )
    with pytest.raises(UsageError, match="is 9 bytes: HS\\* needs at least 32"):
        Gateway(GatewaySpec(port=0, routes=[route]), StaticSource(), base=tmp_path)


def test_the_key_is_chosen_by_the_algorithms_family(tmp_path: Path) -> None:
    (tmp_path / "rsa.pem").write_bytes(PUBLIC_PEM)
    spec = RouteAuthSpec.model_validate({"jwt": {"algorithms": ["RS256", "ES256"], "pem_files": ["rsa.pem"]}})
    auth = RouteAuth(spec, tmp_path)
    ec_token = jwt.encode(claims(aud=None), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")
    with pytest.raises(AuthRefused, match="no key of this route verifies ES256 tokens") as refused:
        auth.check(f"Bearer {ec_token}".encode(), None)
    assert refused.value.status == 401
    assert auth.check(f"Bearer {rs256(aud=None)}".encode(), None) == "user-7"
