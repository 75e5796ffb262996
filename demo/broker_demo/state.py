"""The stand-in's memory: its IAM (providers, roles), issued sessions and the call log."""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from broker_demo.iam import OidcProvider, Role, SamlProvider

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
_UPPER_ALNUM = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
SIGNIN_TOKEN_SECONDS = 15 * 60


class StsFault(Exception):
    """An STS error response: AWS's code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    @property
    def fault_type(self) -> str:
        return "Receiver" if self.status >= 500 else "Sender"


@dataclass(frozen=True, slots=True)
class StsCall:
    """One STS request as the stand-in saw it. Never holds a token, assertion or secret."""

    action: str
    role_arn: str | None
    principal_arn: str | None
    session_name: str | None
    duration_seconds: int | None
    policy: str | None
    policy_arns: tuple[str, ...]
    outcome: str  # "ok" or the AWS error code
    subject: str | None = None
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class FederationCall:
    """One request to the federation endpoint. Never holds credentials or a sign-in token."""

    action: str
    outcome: str  # "ok" or a short reason
    role_arn: str | None = None
    session_duration: int | None = None
    destination: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """Credentials the stand-in handed out, so GetCallerIdentity and federation can find them."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    role_arn: str
    assumed_role_arn: str
    assumed_role_id: str
    account_id: str


@dataclass(slots=True)
class SigninToken:
    access_key_id: str
    session_duration: int
    expires_at: datetime
    used: bool = False


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    access_key_id: str
    destination: str
    expires_at: datetime


def issuer_key(issuer: str) -> str:
    return issuer.rstrip("/")


def oidc_provider_path(issuer: str) -> str:
    """IAM names an OIDC provider by its issuer without the scheme or a trailing slash."""
    parts = urlsplit(issuer_key(issuer))
    return f"{parts.netloc}{parts.path}"


def role_id(role_arn: str) -> str:
    """A stable AROA… id per role, as IAM keeps one per role."""
    digest = hashlib.sha256(role_arn.encode()).digest()
    return "AROA" + base64.b32encode(digest).decode()[:17]


def new_access_key_id() -> str:
    return "ASIA" + "".join(secrets.choice(_UPPER_ALNUM) for _ in range(16))


def new_secret_access_key() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def new_session_token() -> str:
    return base64.b64encode(secrets.token_bytes(360)).decode()


class Registry:
    """Thread-safe state shared by the test thread and the server thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.oidc: dict[tuple[str, str], OidcProvider] = {}  # (account, issuer) -> provider
        self.saml: dict[str, SamlProvider] = {}  # provider ARN -> provider
        self.roles: dict[str, Role] = {}  # role ARN -> role
        self.failures: list[StsFault] = []
        self.sessions: dict[str, IssuedSession] = {}
        self.signin_tokens: dict[str, SigninToken] = {}
        self.console_sessions: dict[str, ConsoleSession] = {}
        self.calls: list[StsCall] = []
        self.federation_calls: list[FederationCall] = []

    def record(self, call: StsCall) -> None:
        with self.lock:
            self.calls.append(call)

    def record_federation(self, call: FederationCall) -> None:
        with self.lock:
            self.federation_calls.append(call)

    def take_failure(self) -> StsFault | None:
        with self.lock:
            return self.failures.pop(0) if self.failures else None

    def role(self, role_arn: str) -> Role | None:
        with self.lock:
            return self.roles.get(role_arn)

    def oidc_provider(self, account_id: str, issuer: str) -> OidcProvider | None:
        with self.lock:
            return self.oidc.get((account_id, issuer_key(issuer)))

    def saml_provider(self, arn: str) -> SamlProvider | None:
        with self.lock:
            return self.saml.get(arn)

    def issue_session(
        self,
        *,
        partition: str,
        role_arn: str,
        account_id: str,
        role_name: str,
        session_name: str,
        expiration: datetime,
    ) -> IssuedSession:
        """Mint credentials for a role session and remember them."""
        issued = IssuedSession(
            access_key_id=new_access_key_id(),
            secret_access_key=new_secret_access_key(),
            session_token=new_session_token(),
            expiration=expiration.replace(microsecond=0),
            role_arn=role_arn,
            assumed_role_arn=f"arn:{partition}:sts::{account_id}:assumed-role/{role_name}/{session_name}",
            assumed_role_id=f"{role_id(role_arn)}:{session_name}",
            account_id=account_id,
        )
        with self.lock:
            self.sessions[issued.access_key_id] = issued
        return issued

    def session(self, access_key_id: str) -> IssuedSession | None:
        with self.lock:
            return self.sessions.get(access_key_id)

    def new_signin_token(self, access_key_id: str, duration: int, now: datetime) -> str:
        token = secrets.token_urlsafe(96)
        expires = now + timedelta(seconds=SIGNIN_TOKEN_SECONDS)
        with self.lock:
            self.signin_tokens[token] = SigninToken(access_key_id, duration, expires)
        return token

    def redeem_signin_token(self, token: str, now: datetime) -> SigninToken | None:
        """Single use: the first redemption marks it used; later ones get None."""
        with self.lock:
            entry = self.signin_tokens.get(token)
            if entry is None or entry.used or entry.expires_at <= now:
                return None
            entry.used = True
            return entry

    def new_console_session(self, session: ConsoleSession) -> str:
        cookie = secrets.token_urlsafe(32)
        with self.lock:
            self.console_sessions[cookie] = session
        return cookie

    def console_session(self, cookie: str, now: datetime) -> ConsoleSession | None:
        with self.lock:
            entry = self.console_sessions.get(cookie)
        return entry if entry is not None and entry.expires_at > now else None
