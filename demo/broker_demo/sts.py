"""The stand-in's STS endpoint: AssumeRoleWithWebIdentity, AssumeRoleWithSAML, GetCallerIdentity."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from starlette.requests import Request
from starlette.responses import Response

from broker_demo import samlassertion
from broker_demo.parameters import (
    SAML_PROVIDER_ARN,
    SESSION_NAME,
    Role,
    Seen,
    check_role_and_policies,
    common_constraints,
)
from broker_demo.query import Constraints, Node, error, read_params, success
from broker_demo.state import IssuedSession, Registry, StsCall, StsFault
from broker_demo.webidentity import WebIdentityVerifier

VERSION = "2011-06-15"
CREDENTIAL = re.compile(r"Credential=(?P<akid>[A-Z0-9]{16,128})/")


def _access_denied(action: str) -> StsFault:
    return StsFault("AccessDenied", f"Not authorized to perform sts:{action}", 403)


def _issued(session: IssuedSession) -> list[Node]:
    credentials: list[Node] = [
        ("AccessKeyId", session.access_key_id),
        ("SecretAccessKey", session.secret_access_key),
        ("SessionToken", session.session_token),
        ("Expiration", session.expiration.strftime("%Y-%m-%dT%H:%M:%SZ")),
    ]
    user: list[Node] = [
        ("Arn", session.assumed_role_arn),
        ("AssumedRoleId", session.assumed_role_id),
    ]
    return [("Credentials", credentials), ("AssumedRoleUser", user)]


def _packed_size(seen: Seen) -> list[Node]:
    if seen.policy is None and not seen.policy_arns:
        return []
    size = (len(seen.policy or "") + 60 * len(seen.policy_arns)) * 100 // 2048
    return [("PackedPolicySize", str(max(1, size)))]


class StsService:
    """POST / : the Query API. Every request is recorded, whatever its outcome."""

    def __init__(
        self,
        registry: Registry,
        *,
        partition: str,
        latency_seconds: float,
        verify_signatures: bool,
        accept_any_issuer: bool,
        web_identity: WebIdentityVerifier,
        clock: Callable[[], datetime],
    ) -> None:
        self._registry = registry
        self._partition = partition
        self._latency = latency_seconds
        self._verify = verify_signatures
        self._accept_any_issuer = accept_any_issuer
        self._web_identity = web_identity
        self._clock = clock

    async def endpoint(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        if self._latency > 0:
            await asyncio.sleep(self._latency)
        seen = Seen()
        try:
            params = await read_params(request)
            seen = Seen.from_params(params)
            injected = self._registry.take_failure()
            if injected is not None:
                raise StsFault(injected.code, injected.message, injected.status)
            response = success(seen.action, await self._dispatch(params, request, seen), request_id)
            outcome = "ok"
        except StsFault as fault:
            response = error(fault, request_id)
            outcome = fault.code
        self._registry.record(
            StsCall(**dataclasses.asdict(seen), outcome=outcome, request_id=request_id)
        )
        return response

    async def _dispatch(self, params: dict[str, str], request: Request, seen: Seen) -> list[Node]:
        action = params.get("Action")
        if not action:
            raise StsFault("MissingAction", "Missing Action")
        version = params.get("Version") or "NO_VERSION_SPECIFIED"
        if version == VERSION:
            now = self._clock()
            if action == "AssumeRoleWithWebIdentity":
                return await self._web_identity_call(params, seen, now)
            if action == "AssumeRoleWithSAML":
                return self._saml_call(params, seen, now)
            if action == "GetCallerIdentity":
                return self._caller_identity(request, seen, now)
        raise StsFault("InvalidAction", f"Could not find operation {action} for version {version}")

    def _issue(
        self,
        role: Role,
        session_name: str,
        duration: int,
        now: datetime,
        cap: datetime | None = None,
    ) -> IssuedSession:
        limit = self._registry.trust_for(role.arn).max_session_seconds
        if limit is not None and duration > limit:
            raise StsFault(
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            )
        expiration = now + timedelta(seconds=duration)
        if cap is not None and cap < expiration:
            expiration = cap
        return self._registry.issue_session(
            partition=self._partition,
            role_arn=role.arn,
            account_id=role.account,
            role_name=role.name,
            session_name=session_name,
            expiration=expiration,
        )

    async def _web_identity_call(
        self, params: dict[str, str], seen: Seen, now: datetime
    ) -> list[Node]:
        c = Constraints()
        session_name = c.length("roleSessionName", params.get("RoleSessionName"), 2, 64)
        c.pattern("roleSessionName", session_name, SESSION_NAME)
        token = c.length("webIdentityToken", params.get("WebIdentityToken"), 4, 20000, echo=False)
        duration = common_constraints(params, c, seen)
        c.raise_if_any()
        role = check_role_and_policies(params, seen, self._partition)
        verified = await self._web_identity.verify(token, account_id=role.account, now=now)
        seen.subject = verified.subject
        trust = self._registry.trust_for(role.arn)
        if trust.deny_all or (
            trust.subject_glob is not None and not fnmatchcase(verified.subject, trust.subject_glob)
        ):
            raise _access_denied("AssumeRoleWithWebIdentity")
        issued = self._issue(role, session_name, duration, now)
        result: list[Node] = [
            *_issued(issued),
            ("SubjectFromWebIdentityToken", verified.subject),
            *_packed_size(seen),
            ("Provider", verified.provider.arn),
            ("Audience", verified.audience),
        ]
        if verified.source_identity is not None:
            result.append(("SourceIdentity", verified.source_identity))
        return result

    def _saml_call(self, params: dict[str, str], seen: Seen, now: datetime) -> list[Node]:
        c = Constraints()
        principal_arn = c.length("principalArn", params.get("PrincipalArn"), 20, 2048)
        encoded = c.length("sAMLAssertion", params.get("SAMLAssertion"), 4, 100000, echo=False)
        duration = common_constraints(params, c, seen)
        c.raise_if_any()
        role = check_role_and_policies(params, seen, self._partition)
        found = SAML_PROVIDER_ARN.fullmatch(principal_arn)
        if found is None or found["partition"] != self._partition:
            raise StsFault("ValidationError", "Request ARN is invalid")
        provider = self._registry.saml_provider(principal_arn)
        if provider is None and not self._accept_any_issuer:
            raise StsFault(
                "InvalidIdentityToken",
                f"No SAML provider found in your account for {principal_arn}",
            )
        if found["account"] != role.account:
            raise _access_denied("AssumeRoleWithSAML")
        assertion = samlassertion.verify_assertion(
            encoded, provider if self._verify else None, partition=self._partition, now=now
        )
        seen.subject = assertion.subject
        seen.session_name = assertion.session_name
        trust = self._registry.trust_for(role.arn)
        # The pair must be one the IdP signed; then the role's trust policy conditions.
        if (
            (role.arn, principal_arn) not in assertion.roles
            or trust.deny_all
            or (trust.saml_aud is not None and assertion.recipient != trust.saml_aud)
            or (
                trust.subject_glob is not None
                and not fnmatchcase(assertion.subject, trust.subject_glob)
            )
        ):
            raise _access_denied("AssumeRoleWithSAML")
        issued = self._issue(
            role, assertion.session_name, duration, now, assertion.session_not_on_or_after
        )
        qualifier = samlassertion.name_qualifier(assertion.issuer, role.account, found["name"])
        result: list[Node] = [
            *_issued(issued),
            *_packed_size(seen),
            ("Audience", assertion.recipient or ""),
            ("Issuer", assertion.issuer),
            ("NameQualifier", qualifier),
            ("Subject", assertion.subject),
            ("SubjectType", samlassertion.subject_type(assertion.subject_format)),
        ]
        if assertion.source_identity is not None:
            result.append(("SourceIdentity", assertion.source_identity))
        return result

    def _caller_identity(self, request: Request, seen: Seen, now: datetime) -> list[Node]:
        # The SigV4 signature itself is NOT verified: the stand-in only checks that the access
        # key id is one it issued and that X-Amz-Security-Token is that session's token.
        invalid = StsFault(
            "InvalidClientTokenId", "The security token included in the request is invalid.", 403
        )
        match = CREDENTIAL.search(request.headers.get("authorization", ""))
        session = None if match is None else self._registry.session(match["akid"])
        token = request.headers.get("x-amz-security-token", "")
        if session is None or not hmac.compare_digest(
            token.encode(), session.session_token.encode()
        ):
            raise invalid
        seen.role_arn = session.role_arn
        seen.session_name = session.assumed_role_id.partition(":")[2]
        if session.expiration <= now:
            raise StsFault(
                "ExpiredToken", "The security token included in the request is expired", 403
            )
        return [
            ("UserId", session.assumed_role_id),
            ("Account", session.account_id),
            ("Arn", session.assumed_role_arn),
        ]
