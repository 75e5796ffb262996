"""Browser sessions: a signed cookie naming a server-side record that holds the verified Identity."""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from broker.errors import CsrfFailed, SessionExpired
from broker.identity import (
    Identity,
    NoProof,
    Proof,
    SamlAssertion,
    SignedRole,
    WebIdentityToken,
)
from broker.seal import Sealer
from broker.store import Store

log = logging.getLogger(__name__)
COOKIE = "broker_session"
SESSION_KEY = "session:{}"


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """What the store holds for one signed-in browser; the cookie carries only the signed id."""

    id: str
    csrf: str
    identity: Identity
    expires_at: datetime
    # The console path the sign-in itself went on to: opened once even though the redirect
    # to it follows the IdP's cross-site POST (broker.http.origin).
    landing: str | None = None

    def check_csrf(self, token: str | None) -> None:
        """OWASP CSRF cheat sheet (synchronizer token): every state-changing POST carries it."""
        if not token or not hmac.compare_digest(token.encode(), self.csrf.encode()):
            raise CsrfFailed("The form is missing its security token; reload the page.")


class SessionManager:
    """Session records in the store are sealed (AES-GCM, bound to their key): whoever reads
    the store sees no assertion or token, and cannot alter or move a record."""

    def __init__(
        self,
        store: Store,
        keys: Sequence[bytes],
        *,
        max_seconds: int,
        secure: bool,
        cookie: str = COOKIE,
        issuer_seconds: Callable[[Identity, datetime], float | None] | None = None,
    ) -> None:
        self._store = store
        # itsdangerous signs with the last key and accepts any of them.
        self._signer = URLSafeTimedSerializer(list(reversed(keys)), salt="broker.session")
        self._sealer = Sealer(keys)
        self._max = max_seconds
        # Issuer mode: the broker signs a fresh assertion per request, so its session may
        # outlive the upstream proof (see broker.issuer.mint.broker_session_seconds).
        self._issuer_seconds = issuer_seconds
        self._secure = secure
        self.cookie = cookie

    def lifetime(self, identity: Identity, now: datetime) -> float:
        """No longer than the assertion allows (its expiry and SessionNotOnOrAfter) and no
        longer than server.session_max_seconds; in issuer mode, the issuer's own length."""
        issued = self._issuer_seconds(identity, now) if self._issuer_seconds else None
        if issued is not None:
            return issued
        limits = [float(self._max), (identity.expires_at - now).total_seconds()]
        if identity.session_not_on_or_after is not None:
            limits.append((identity.session_not_on_or_after - now).total_seconds())
        return min(limits)

    async def create(
        self, identity: Identity, now: datetime, *, landing: str | None = None
    ) -> tuple[str, BrowserSession]:
        ttl = self.lifetime(identity, now)
        if ttl <= 0:
            raise SessionExpired("The sign-in has already expired; sign in again.")
        sid = secrets.token_urlsafe(32)
        expires = datetime.fromtimestamp(now.timestamp() + ttl, UTC)
        session = BrowserSession(sid, secrets.token_urlsafe(32), identity, expires, landing=landing)
        await self._save(session, now)
        return self._signer.dumps(sid), session

    async def load(self, request: Request, now: datetime) -> BrowserSession | None:
        raw = request.cookies.get(self.cookie)
        if not raw:
            return None
        try:
            sid = self._signer.loads(raw, max_age=self._max)
        except BadSignature:
            return None
        if not isinstance(sid, str):
            return None
        key = SESSION_KEY.format(sid)
        sealed = await self._store.get(key)
        if sealed is None:
            return None
        try:
            data = self._sealer.open(sealed, context=key)
        except SessionExpired as exc:
            log.warning("session record refused: %s", exc.log_detail)
            return None
        session = _decode(sid, data)
        return session if session.expires_at > now else None

    async def require(self, request: Request, now: datetime) -> BrowserSession:
        session = await self.load(request, now)
        if session is None:
            raise SessionExpired("Your sign-in has expired; sign in again.")
        return session

    async def land(
        self, session: BrowserSession, path: str, now: datetime
    ) -> BrowserSession | None:
        """If `path` is where the sign-in went on to, the session without it (once only)."""
        if session.landing is None or not hmac.compare_digest(
            session.landing.encode(), path.encode()
        ):
            return None
        landed = replace(session, landing=None)
        await self._save(landed, now)
        return landed

    async def destroy(self, session: BrowserSession) -> None:
        await self._store.delete(SESSION_KEY.format(session.id))

    def set_cookie(self, response: Response, value: str, session: BrowserSession) -> None:
        now = datetime.now(UTC)
        response.set_cookie(
            self.cookie,
            value,
            max_age=max(1, int((session.expires_at - now).total_seconds())),
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(
            self.cookie, path="/", secure=self._secure, httponly=True, samesite="lax"
        )

    async def _save(self, session: BrowserSession, now: datetime) -> None:
        ttl = (session.expires_at - now).total_seconds()
        if ttl > 0:
            key = SESSION_KEY.format(session.id)
            sealed = self._sealer.seal(_encode(session), context=key)
            await self._store.put(key, sealed, ttl)


def _encode(s: BrowserSession) -> bytes:
    doc: dict[str, Any] = {
        "csrf": s.csrf,
        "expires_at": s.expires_at.timestamp(),
        "landing": s.landing,
        "identity": encode_identity(s.identity),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _decode(sid: str, data: bytes) -> BrowserSession:
    doc = json.loads(data)
    identity = decode_identity(doc["identity"])
    expires = datetime.fromtimestamp(doc["expires_at"], UTC)
    return BrowserSession(sid, doc["csrf"], identity, expires, landing=doc.get("landing"))


def encode_identity(i: Identity) -> dict[str, Any]:
    """An Identity as JSON-ready values, for records the store keeps sealed (browser sessions,
    and anything else that must carry a verified identity, its proof included)."""
    nooa = i.session_not_on_or_after
    return {
        "protocol": i.protocol,
        "idp": i.idp,
        "issuer": i.issuer,
        "subject": i.subject,
        "attributes": dict(i.attributes),
        "expires_at": i.expires_at.timestamp(),
        "proof": _encode_proof(i.proof),
        "signed_roles": [[r.role_arn, r.principal_arn] for r in i.signed_roles],
        "session_name": i.session_name,
        "session_duration": i.session_duration,
        "session_not_on_or_after": None if nooa is None else nooa.timestamp(),
    }


def decode_identity(i: dict[str, Any]) -> Identity:
    nooa = i["session_not_on_or_after"]
    return Identity(
        protocol=i["protocol"],
        idp=i["idp"],
        issuer=i["issuer"],
        subject=i["subject"],
        attributes=i["attributes"],
        expires_at=datetime.fromtimestamp(i["expires_at"], UTC),
        proof=_decode_proof(i["proof"]),
        signed_roles=tuple(SignedRole(r, p) for r, p in i["signed_roles"]),
        session_name=i["session_name"],
        session_duration=i["session_duration"],
        session_not_on_or_after=None if nooa is None else datetime.fromtimestamp(nooa, UTC),
    )


def _encode_proof(proof: Proof) -> dict[str, str]:
    if isinstance(proof, SamlAssertion):
        issued = "" if proof.issued_at is None else proof.issued_at.isoformat()
        return {"kind": "saml", "response": proof.response, "issued_at": issued}
    if isinstance(proof, WebIdentityToken):
        doc = {"kind": "web-identity", "token": proof.token, "session_name": proof.session_name}
        if proof.expires_at is not None:
            doc["expires_at"] = proof.expires_at.isoformat()
        return doc
    return {"kind": "none"}


def _decode_proof(doc: dict[str, str]) -> Proof:
    kind = doc.get("kind")
    if kind == "saml":
        issued = doc.get("issued_at")
        return SamlAssertion(doc["response"], datetime.fromisoformat(issued) if issued else None)
    if kind == "web-identity":
        expires = doc.get("expires_at")
        return WebIdentityToken(
            doc["token"], doc["session_name"], datetime.fromisoformat(expires) if expires else None
        )
    return NoProof()
