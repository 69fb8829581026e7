"""Per-route authentication in the gateway: bearer JWTs (PyJWT) and hashed API keys.

A route with ``auth:`` lets a request through only with a credential it accepts, and tells the
service who sent it in ``X-Minga-Subject`` (a header the gateway strips from every incoming
request, so a client cannot name itself). The rules that keep a token from being forged:

- the algorithm in the token's header must be on the route's allow-list (``none`` never is);
- the key is chosen by the algorithm's family: ``HS*`` only with the route's shared secret,
  ``RS*``/``PS*`` only with RSA public keys, ``ES*`` with EC keys, ``EdDSA`` with Ed25519/Ed448
  keys. A token signed with HS256 using the RSA public key as the secret therefore finds no key;
- ``exp`` and ``sub`` are required, ``exp``/``nbf`` checked with the route's leeway, and
  ``iss``/``aud`` when the route names them; then every required scope.

API keys are kept as sha256 hex digests; a key sent is hashed and compared with each digest in
constant time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import jwt.types
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from minga.errors import UsageError
from minga.security import same_secret
from minga.spec import JwtSpec, RouteAuthSpec

__all__ = ["SUBJECT_HEADER", "AuthRefused", "RouteAuth"]

SUBJECT_HEADER = b"x-minga-subject"
"""The header that carries the authenticated subject to the service."""

MIN_SECRET_BYTES = 32  # RFC 7518 section 3.2: a key at least as long as the hash (HS256)
_SUBJECT = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,255}$")  # printable ASCII: no header injection
_FAMILIES: dict[str, tuple[type, ...]] = {
    "RS": (RSAPublicKey,),
    "PS": (RSAPublicKey,),
    "ES": (EllipticCurvePublicKey,),
    "Ed": (Ed25519PublicKey, Ed448PublicKey),
}


class AuthRefused(Exception):
    """A request a route does not let through: ``status`` 401 (no or bad credential) or 403
    (a good credential without the required scope); ``subject`` when it was known."""

    def __init__(self, status: int, message: str, subject: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.subject = subject


def _read(base: Path, name: str, what: str) -> bytes:
    path = Path(name) if Path(name).is_absolute() else base / name
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"the gateway cannot read the {what} {path}: {exc.strerror}") from None


class _Jwt:
    """The keys and rules of one route's ``jwt:``."""

    def __init__(self, spec: JwtSpec, base: Path) -> None:
        self.spec = spec
        self.algorithms = frozenset(spec.algorithms)
        self.secret = _read(base, spec.secret_file, "JWT secret file").strip() if spec.secret_file else None
        if self.secret is not None and len(self.secret) < MIN_SECRET_BYTES:
            raise UsageError(
                f"the JWT secret in {spec.secret_file} is {len(self.secret)} bytes: HS* needs at least "
                f"{MIN_SECRET_BYTES} (make one with: openssl rand -base64 48)"
            )
        self.keys: list[tuple[str | None, Any]] = []  # (kid, public key object)
        if spec.jwks_file is not None:
            try:
                jwks = jwt.PyJWKSet.from_json(_read(base, spec.jwks_file, "JWKS file").decode())
            except (jwt.PyJWKSetError, jwt.InvalidKeyError, ValueError) as exc:
                raise UsageError(f"the JWKS file {spec.jwks_file} holds no usable key: {exc}") from None
            self.keys += [(k.key_id, k.key) for k in jwks.keys if k.key_type != "oct"]
        for name in spec.pem_files:
            try:
                self.keys.append((None, load_pem_public_key(_read(base, name, "PEM key file"))))
            except ValueError as exc:
                raise UsageError(f"{name} is not a PEM public key: {exc}") from None
        required = ["exp", "sub"] + (["iss"] if spec.issuer else []) + (["aud"] if spec.audience else [])
        self.options: jwt.types.Options = {"require": required}

    def _key(self, alg: str, kid: object) -> Any:
        if alg.startswith("HS"):
            return self.secret
        family = _FAMILIES.get(alg[:2], ())
        fitting = [(k, key) for k, key in self.keys if isinstance(key, family)]
        if kid is not None:
            fitting = [(k, key) for k, key in fitting if k is None or k == kid]
        return fitting[0][1] if fitting else None

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of ``token``; raises :class:`AuthRefused` (401, or 403 for a missing scope)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise AuthRefused(401, "the bearer token is not a JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            allowed = ", ".join(sorted(self.algorithms))
            raise AuthRefused(
                401, f"the token's algorithm {alg!r} is not accepted here (accepted: {allowed})"
            )
        key = self._key(alg, header.get("kid"))
        if key is None:
            raise AuthRefused(401, f"no key of this route verifies {alg} tokens")
        spec = self.spec
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=spec.audience,
                issuer=spec.issuer,
                leeway=spec.leeway,
                options=self.options,
            )
        except jwt.ExpiredSignatureError:
            raise AuthRefused(401, "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthRefused(401, "the token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise AuthRefused(401, f"the token is not for this audience (expected {spec.audience})") from None
        except jwt.InvalidIssuerError:
            raise AuthRefused(401, f"the token is not from the expected issuer ({spec.issuer})") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthRefused(401, f"the token has no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthRefused(401, "the token's signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise AuthRefused(401, f"the token is not valid: {exc}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not _SUBJECT.match(subject):
            raise AuthRefused(401, "the token's sub claim is not printable text of at most 256 characters")
        if spec.scopes:
            granted = _scopes(claims)
            missing = [s for s in spec.scopes if s not in granted]
            if missing:
                raise AuthRefused(403, f"the token lacks the scope {' '.join(missing)}", subject)
        return claims


def _scopes(claims: Mapping[str, Any]) -> set[str]:
    """The scopes a token grants: ``scope`` (space-separated text) and ``scp`` (a list or text)."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return found


def _api_keys(spec: RouteAuthSpec, base: Path) -> list[tuple[str, bytes]]:
    keys = [(name, digest.encode()) for name, digest in spec.api_keys.items()]
    if spec.api_keys_file is not None:
        text = _read(base, spec.api_keys_file, "API keys file").decode("utf-8", "replace")
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, digest = line.partition(" ")
            digest = digest.strip().lower()
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise UsageError(
                    f"{spec.api_keys_file}:{number}: expected 'name sha256-hex-digest' "
                    "(make one with: printf %s KEY | sha256sum)"
                )
            keys.append((name, digest.encode()))
    return keys


class RouteAuth:
    """What one route requires; :meth:`check` names the subject of a request or refuses it.

    Files named in ``spec`` are read once, relative to ``base``; raises
    :class:`~minga.errors.UsageError` when one is missing or unusable.
    """

    def __init__(self, spec: RouteAuthSpec, base: Path) -> None:
        self.jwt = _Jwt(spec.jwt, base) if spec.jwt is not None else None
        self.api_keys = _api_keys(spec, base)
        self.api_key_header = spec.api_key_header.lower().encode()
        accepted = (["Authorization: Bearer <JWT>"] if self.jwt else []) + (
            [spec.api_key_header] if self.api_keys or spec.api_keys_file else []
        )
        self._required = "authentication required: send " + " or ".join(accepted)

    def check(self, authorization: bytes | None, api_key: bytes | None) -> str:
        """The subject of a request with these header values; raises :class:`AuthRefused`."""
        if authorization is not None and self.jwt is not None:
            scheme, _, token = authorization.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthRefused(401, "expected Authorization: Bearer <JWT>")
            return str(self.jwt.verify(token.strip())["sub"])
        if api_key is not None and self.api_keys:
            digest = hashlib.sha256(api_key.strip()).hexdigest().encode()
            found = None
            for name, expected in self.api_keys:  # every digest compared: the time says nothing
                if same_secret(digest, expected) and found is None:
                    found = name
            if found is None:
                raise AuthRefused(401, "the API key is not known")
            return f"apikey:{found}"
        raise AuthRefused(401, self._required)
