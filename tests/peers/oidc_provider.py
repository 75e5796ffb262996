"""A real OpenID Connect provider (panva's oidc-provider under node) that tests mint JWTs from.

Register it with ``pytest_plugins = ["tests.peers.oidc_provider"]`` to get the session-scoped
``oidc_provider`` fixture. Keys are generated here, per run, and never leave the temp dir.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.fakes.servers import NotReady, free_port, wait_for_http

NODE_DIR = Path(__file__).resolve().parent / "oidc"
SETUP_HINT = "run `scripts/setup --test` to install node and tests/peers/oidc/node_modules"

#: Resource indicator that server.mjs signs with ES256; its ``aud`` is this string itself.
ES256_RESOURCE = "urn:broker:es256"
#: server.mjs reads ``urn:broker:aud:<ALG>:<percent-encoded audience>`` as "this alg, this aud".
_AUD_PREFIX = "urn:broker:aud:"
_ALGS = ("RS256", "ES256")
_STARTUP_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_HTTP_TIMEOUT = 5.0
_LOG_TAIL = 4000
# Client metadata worth replaying as static clients when node restarts (key rotation).
_PERSISTED_CLIENT_FIELDS = (
    "client_id",
    "client_secret",
    "grant_types",
    "response_types",
    "redirect_uris",
    "token_endpoint_auth_method",
    "extra_claims",
    "id_token_signed_response_alg",
    "jwks",
)


class OidcPeerError(RuntimeError):
    """The OIDC peer could not be started or refused a request."""


def missing_prerequisites() -> str | None:
    """Say what is missing to run the peer, or None when node and its modules are installed."""
    if shutil.which("node") is None:
        return f"the OIDC provider peer needs `node` on PATH: {SETUP_HINT}"
    if not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"the OIDC provider peer needs {NODE_DIR / 'node_modules'}: {SETUP_HINT}"
    return None


@dataclass(frozen=True)
class _SigningKey:
    alg: str
    kid: str
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    private_jwk: Mapping[str, Any]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 over the required public members, sorted, no whitespace."""
    required = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def _generate_key(alg: str) -> _SigningKey:
    jwk: dict[str, Any]
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if alg == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = dict(RSAAlgorithm.to_jwk(key, as_dict=True))
    elif alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = dict(ECAlgorithm.to_jwk(key, as_dict=True))
    else:
        raise ValueError(f"unsupported alg {alg!r}; the peer signs with {', '.join(_ALGS)}")
    # oidc-provider honours key_ops when selecting keys; PyJWT's ["sign"] would hide them from
    # verification, so publish plain use=sig keys.
    jwk.pop("key_ops", None)
    jwk.update(kid=_thumbprint(jwk), alg=alg, use="sig")
    return _SigningKey(alg=alg, kid=jwk["kid"], private_key=key, private_jwk=jwk)


def _write_private(path: Path, data: Any) -> None:
    """Write JSON readable by the owner only: these files hold private keys and secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)


def resource_indicator(audience: str, alg: str | None = None) -> str:
    """The RFC 8707 ``resource`` value server.mjs turns into this ``aud`` and signing alg.

    oidc-provider only accepts absolute URIs as resource indicators, so an audience such as
    ``sts.amazonaws.com`` (or any audience with an explicit alg) travels in the
    ``urn:broker:aud:`` form; absolute URIs pass through and sign with RS256, except
    ``urn:broker:es256`` which signs with ES256.
    """
    if alg is None and urlsplit(audience).scheme:
        return audience
    alg = alg or "RS256"
    if alg not in _ALGS:
        raise ValueError(f"unsupported alg {alg!r}; the peer signs with {', '.join(_ALGS)}")
    return f"{_AUD_PREFIX}{alg}:{quote(audience, safe='')}"


class OidcProviderPeer:
    """One oidc-provider process on 127.0.0.1, with keys and registered clients owned here."""

    def __init__(self, *, ttl: int = 600, id_token_ttl: int = 3600) -> None:
        self.ttl = ttl
        self.id_token_ttl = id_token_ttl
        self._port: int | None = None
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._current: dict[str, _SigningKey] = {}
        self._previous: dict[str, _SigningKey] = {}
        self._clients: list[dict[str, Any]] = []
        self._accounts: dict[str, dict[str, Any]] = {}
        self._registration_token = secrets.token_urlsafe(32)
        self.discovery: dict[str, Any] = {}
        #: Seconds the last start took, from spawning node until discovery answered.
        self.startup_seconds: float = 0.0

    @property
    def issuer(self) -> str:
        if self._port is None:
            raise OidcPeerError("the OIDC peer has not been started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def jwks_uri(self) -> str:
        return str(self.discovery["jwks_uri"])

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # lifecycle

    def start(self) -> None:
        if self.running:
            return
        problem = missing_prerequisites()
        if problem is not None:
            raise OidcPeerError(problem)
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="oidc-peer-"))
        if not self._current:
            self._current = {alg: _generate_key(alg) for alg in _ALGS}
        if self._port is None:
            self._port = free_port()
        self._write_keys()
        self._spawn()

    def stop(self) -> None:
        self._terminate()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def rotate_keys(self) -> None:
        """New RSA and EC keys sign from now on; the previous generation stays in the JWKS.

        Only one previous generation is kept, so a second rotation drops the oldest keys.
        Node restarts on the same port; registered clients are replayed as static clients.
        """
        if not self.running:
            raise OidcPeerError("rotate_keys() needs a running peer; call start() first")
        self._previous = self._current
        self._current = {alg: _generate_key(alg) for alg in _ALGS}
        self._terminate()
        self._write_keys()
        self._spawn()

    # clients and tokens

    def register_client(self, claims: Mapping[str, Any] | None = None) -> tuple[str, str]:
        """Dynamic client registration; ``claims`` are copied into every token the client gets.

        A ``sub`` in ``claims`` replaces the default subject (the client_id).
        """
        metadata: dict[str, Any] = {
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
            "token_endpoint_auth_method": "client_secret_basic",
        }
        if claims is not None:
            metadata["extra_claims"] = dict(claims)
        registered = self._register(metadata)
        return registered["client_id"], registered["client_secret"]

    def _register(self, metadata: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            str(self.discovery["registration_endpoint"]),
            json=metadata,
            headers={"Authorization": f"Bearer {self._registration_token}"},
            timeout=_HTTP_TIMEOUT,
        )
        if response.status_code != httpx.codes.CREATED:
            raise OidcPeerError(f"registration refused: {response.status_code} {response.text}")
        registered: dict[str, Any] = response.json()
        self._clients.append(
            {k: registered[k] for k in _PERSISTED_CLIENT_FIELDS if k in registered}
        )
        return registered

    def add_person(self, username: str, claims: Mapping[str, Any]) -> None:
        """Someone who can sign in at the login page as `username` (their `sub`); the ID
        token carries `claims` by scope: email, email_verified (email), name, groups (profile)."""
        self._accounts[username] = dict(claims)
        assert self._workdir is not None
        _write_private(self._workdir / "accounts.json", self._accounts)

    def register_login_client(
        self,
        redirect_uri: str,
        *,
        alg: str = "RS256",
        public_jwk: Mapping[str, Any] | None = None,
    ) -> tuple[str, str | None]:
        """A client of the authorization code flow (PKCE required) whose ID tokens are signed
        with `alg`; it authenticates with client_secret_basic, or with private_key_jwt under
        `public_jwk`. Returns the client ID and its secret (None with private_key_jwt)."""
        metadata: dict[str, Any] = {
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "redirect_uris": [redirect_uri],
            "id_token_signed_response_alg": alg,
            "token_endpoint_auth_method": "client_secret_basic",
        }
        if public_jwk is not None:
            metadata["token_endpoint_auth_method"] = "private_key_jwt"
            metadata["jwks"] = {"keys": [dict(public_jwk)]}
        registered = self._register(metadata)
        return registered["client_id"], registered.get("client_secret")

    def sign_in(self, authorization_url: str, username: str, *, deny: bool = False) -> str:
        """Play a browser at the login page: follow the authorization request, sign in as
        `username` (or Deny), and return the URL the IdP sends the browser back to."""
        with httpx.Client(timeout=_HTTP_TIMEOUT) as browser:
            r = browser.get(authorization_url)
            while r.status_code in (302, 303) and r.headers["location"].startswith(
                ("/", self.issuer + "/")
            ):
                r = browser.get(httpx.URL(str(r.url)).join(r.headers["location"]))
            if r.status_code != 200 or "/interaction/" not in str(r.url):
                raise OidcPeerError(f"no login page: {r.status_code} {r.text[:300]}")
            action = "abort" if deny else "login"
            r = browser.post(f"{r.url}/{action}", data={"username": username})
            while r.status_code in (302, 303) and r.headers["location"].startswith(
                ("/", self.issuer + "/")
            ):
                r = browser.get(httpx.URL(str(r.url)).join(r.headers["location"]))
            if r.status_code not in (302, 303):
                raise OidcPeerError(f"sign-in refused: {r.status_code} {r.text[:300]}")
            return str(r.headers["location"])

    def mint(
        self,
        client: tuple[str, str],
        *,
        resource: str = "sts.amazonaws.com",
        alg: str | None = None,
    ) -> str:
        """A JWT access token from the client_credentials grant, with ``aud`` = ``resource``.

        Signed with RS256, or ES256 for ``resource="urn:broker:es256"``; ``alg`` forces one.
        """
        response = httpx.post(
            str(self.discovery["token_endpoint"]),
            auth=client,
            data={
                "grant_type": "client_credentials",
                "resource": resource_indicator(resource, alg),
            },
            timeout=_HTTP_TIMEOUT,
        )
        if response.status_code != httpx.codes.OK:
            raise OidcPeerError(f"token request refused: {response.status_code} {response.text}")
        token: str = response.json()["access_token"]
        return token

    def jwks(self) -> dict[str, Any]:
        """The public JWKS exactly as the provider serves it."""
        response = httpx.get(self.jwks_uri, timeout=_HTTP_TIMEOUT)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    # keys, for tests that forge edge-case tokens with the issuer's real key

    def private_jwk(self, alg: str) -> dict[str, Any]:
        return dict(self._signing_key(alg).private_jwk)

    def public_pem(self, alg: str = "RS256") -> bytes:
        return (
            self._signing_key(alg)
            .private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def kid(self, alg: str) -> str:
        """The kid of the key that currently signs ``alg`` tokens."""
        return self._signing_key(alg).kid

    # internals

    def _signing_key(self, alg: str) -> _SigningKey:
        if alg not in _ALGS:
            raise ValueError(f"unsupported alg {alg!r}; the peer signs with {', '.join(_ALGS)}")
        if not self._current:
            raise OidcPeerError("no keys yet; call start() first")
        return self._current[alg]

    def _write_keys(self) -> None:
        assert self._workdir is not None
        # oidc-provider signs with the first matching key and only publishes the rest.
        keys = [k.private_jwk for k in self._current.values()]
        keys += [k.private_jwk for k in self._previous.values()]
        _write_private(self._workdir / "jwks.json", {"keys": keys})
        _write_private(self._workdir / "clients.json", self._clients)
        _write_private(self._workdir / "accounts.json", self._accounts)

    def _spawn(self) -> None:
        assert self._workdir is not None
        node = shutil.which("node")
        assert node is not None
        self._log = (self._workdir / "node.log").open("ab")
        env = {**os.environ, "OIDC_PEER_REGISTRATION_TOKEN": self._registration_token}
        started = time.monotonic()
        self._process = subprocess.Popen(
            [
                node,
                "server.mjs",
                "--port",
                str(self._port),
                "--keys",
                str(self._workdir / "jwks.json"),
                "--issuer",
                self.issuer,
                "--ttl",
                str(self.ttl),
                "--clients",
                str(self._workdir / "clients.json"),
                "--accounts",
                str(self._workdir / "accounts.json"),
                "--id-token-ttl",
                str(self.id_token_ttl),
            ],
            cwd=NODE_DIR,
            env=env,
            # node exits when this pipe closes, so it never outlives the test process.
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self.discovery = self._await_discovery()
        except OidcPeerError:
            self._terminate()
            raise
        self.startup_seconds = time.monotonic() - started

    def _await_discovery(self) -> dict[str, Any]:
        assert self._process is not None
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            response = wait_for_http(
                url,
                timeout=_STARTUP_TIMEOUT,
                what=f"oidc-provider at {url}",
                alive=self._process,
                output=self._log_tail,
            )
        except NotReady as exc:
            raise OidcPeerError(str(exc)) from exc
        if response.status_code != httpx.codes.OK:
            raise OidcPeerError(f"discovery answered {response.status_code}: {response.text}")
        body: dict[str, Any] = response.json()
        if body.get("issuer") != self.issuer:
            raise OidcPeerError(f"discovery names issuer {body.get('issuer')!r}")
        return body

    def _log_tail(self) -> str:
        if self._workdir is None:
            return ""
        try:
            data = (self._workdir / "node.log").read_bytes()
        except OSError:
            return ""
        return data[-_LOG_TAIL:].decode("utf-8", errors="replace")

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdin is not None:
                process.stdin.close()
        if self._log is not None:
            self._log.close()
            self._log = None


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProviderPeer]:
    """A running oidc-provider for the whole session; fails (never skips) if it cannot run."""
    problem = missing_prerequisites()
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    peer = OidcProviderPeer()
    try:
        peer.start()
    except OidcPeerError as exc:
        peer.stop()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield peer
    finally:
        peer.stop()
