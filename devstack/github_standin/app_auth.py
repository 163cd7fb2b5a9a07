"""Credentials: configured tokens, GitHub App JWTs (RS256) and the installation tokens issued for them.

Error texts are GitHub's (PyGithub replay data ``GithubIntegration.testGetAccessTokenWithExpiredJWT``
and widely reported 401 bodies). Tokens are compared, never logged.
"""

from __future__ import annotations

import hmac
import secrets
import string
import threading
import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.github_standin.config import GitHubAppSpec, StandinConfig

INSTALLATION_TOKEN_TTL = 3600  # GitHub installation tokens live one hour
MAX_JWT_LIFETIME = 600  # GitHub refuses JWTs whose exp is more than 10 minutes after iat
CLOCK_DRIFT = 30

JWT_UNDECODABLE = "A JSON web token could not be decoded"
JWT_EXPIRED = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
JWT_TOO_LONG = "'Expiration time' claim ('exp') is too far in the future"
_TOKEN_ALPHABET = string.ascii_letters + string.digits


class AuthFailure(Exception):
    """Authentication refused; ``message`` is the text GitHub would answer with."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class InstallationToken:
    token: str
    app: GitHubAppSpec
    expires_at: float


@dataclass(frozen=True)
class Principal:
    """Who a request authenticated as; ``kind`` is ``token`` or ``installation`` (never the secret)."""

    kind: str
    installation_id: int | None = None


class Credentials:
    """Thread-safe store of accepted tokens, known Apps and issued installation tokens."""

    def __init__(self, config: StandinConfig) -> None:
        self._lock = threading.Lock()
        self._tokens: set[str] = set(config.tokens)
        self._apps: dict[int, GitHubAppSpec] = {app.app_id: app for app in config.apps}
        self._installation_tokens: dict[str, InstallationToken] = {}

    def add_token(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def add_app(self, app: GitHubAppSpec) -> None:
        with self._lock:
            self._apps[app.app_id] = app

    def authenticate_token(self, authorization: str | None) -> Principal:
        """``Authorization: token <t>`` (or ``Bearer <t>``) with a configured or a live installation token."""
        secret = _credential(authorization)
        if secret is None:
            raise AuthFailure("Bad credentials")
        with self._lock:
            if any(hmac.compare_digest(secret, known) for known in self._tokens):
                return Principal("token")
            issued = self._installation_tokens.get(secret)
        if issued is not None and issued.expires_at > time.time():
            return Principal("installation", issued.app.installation_id)
        raise AuthFailure("Bad credentials")

    def authenticate_app(self, authorization: str | None) -> GitHubAppSpec:
        """The App whose private key signed the ``Bearer`` JWT, after checking ``iss``, ``iat`` and ``exp``."""
        token = _credential(authorization)
        if token is None or token.count(".") != 2:
            raise AuthFailure(JWT_UNDECODABLE)
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            app = self._apps.get(int(unverified["iss"]))
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as error:
            raise AuthFailure(JWT_UNDECODABLE) from error
        if app is None:
            raise AuthFailure(JWT_UNDECODABLE)
        try:
            claims = jwt.decode(
                token,
                app.public_key_pem,
                algorithms=["RS256"],
                options={"require": ["exp", "iat", "iss"]},
                leeway=CLOCK_DRIFT,
            )
        except jwt.ExpiredSignatureError as error:
            raise AuthFailure(JWT_EXPIRED) from error
        except jwt.PyJWTError as error:
            raise AuthFailure(JWT_UNDECODABLE) from error
        if int(claims["exp"]) - int(claims["iat"]) > MAX_JWT_LIFETIME + CLOCK_DRIFT:
            raise AuthFailure(JWT_TOO_LONG)
        return app

    def issue_installation_token(self, app: GitHubAppSpec) -> InstallationToken:
        token = "ghs_" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(36))
        issued = InstallationToken(token, app, time.time() + INSTALLATION_TOKEN_TTL)
        with self._lock:
            self._installation_tokens[token] = issued
        return issued

    def app_for_installation(self, installation_id: int) -> GitHubAppSpec | None:
        with self._lock:
            return next((app for app in self._apps.values() if app.installation_id == installation_id), None)


def _credential(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not value.strip():
        return None
    return value.strip()


def generate_app_keypair() -> tuple[str, str]:
    """A fresh RSA key for a test GitHub App: ``(private key PEM for PyGithub, public key PEM for the stand-in)``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem
