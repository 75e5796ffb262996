"""The stand-in's STS endpoint: AssumeRoleWithWebIdentity, AssumeRoleWithSAML, GetCallerIdentity."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from broker_demo import limits, samlassertion
from broker_demo.authorize import (
    Caller,
    access_denied,
    authorize,
    saml_caller,
    web_identity_caller,
)
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


def _packed_size(percent: int) -> list[Node]:
    return [("PackedPolicySize", str(percent))] if percent else []


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
        allow_unregistered_roles: bool,
        saml_redemption_window: timedelta,
        web_identity: WebIdentityVerifier,
        clock: Callable[[], datetime],
    ) -> None:
        self._registry = registry
        self._allow_unregistered = allow_unregistered_roles
        self._redemption_window = saml_redemption_window
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
        seen: Seen,
        duration: int,
        now: datetime,
        caller: Caller,
        *,
        saml_session_duration: int | None = None,
        not_on_or_after: datetime | None = None,
    ) -> tuple[IssuedSession, int]:
        """The role's trust, its MaxSessionDuration, the packed size; then credentials."""
        registered = authorize(
            self._registry, role.arn, caller, allow_unregistered=self._allow_unregistered
        )
        ends = limits.session_end(
            now,
            duration,
            registered.max_session_duration if registered else 43200,
            saml_session_duration=saml_session_duration,
            not_on_or_after=not_on_or_after,
        )
        packed = limits.packed_percent(seen.policy, seen.policy_arns, caller.tags)
        issued = self._registry.issue_session(
            partition=self._partition,
            role_arn=role.arn,
            account_id=role.account,
            role_name=role.name,
            session_name=session_name,
            expiration=ends,
        )
        return issued, packed

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
        issued, packed = self._issue(
            role, session_name, seen, duration, now, web_identity_caller(verified)
        )
        result: list[Node] = [
            *_issued(issued),
            ("SubjectFromWebIdentityToken", verified.subject),
            *_packed_size(packed),
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
            raise access_denied("AssumeRoleWithSAML")
        assertion = samlassertion.verify_assertion(
            encoded,
            provider if self._verify else None,
            partition=self._partition,
            now=now,
            redemption_window=self._redemption_window,
        )
        seen.subject = assertion.subject
        seen.session_name = assertion.aws.session_name
        # The pair must be one the IdP signed (id_roles_providers_create_saml_assertions.md:
        # the Role attribute lists the role/provider pairs the user may assume).
        if (role.arn, principal_arn) not in assertion.aws.roles:
            raise access_denied("AssumeRoleWithSAML")
        issued, packed = self._issue(
            role,
            assertion.aws.session_name,
            seen,
            duration,
            now,
            saml_caller(assertion, principal_arn, role.account, found["name"]),
            saml_session_duration=assertion.aws.session_duration,
            not_on_or_after=assertion.session_not_on_or_after,
        )
        qualifier = samlassertion.name_qualifier(assertion.issuer, role.account, found["name"])
        result: list[Node] = [
            *_issued(issued),
            *_packed_size(packed),
            ("Audience", assertion.recipient or ""),
            ("Issuer", assertion.issuer),
            ("NameQualifier", qualifier),
            ("Subject", assertion.subject),
            ("SubjectType", samlassertion.subject_type(assertion.subject_format)),
        ]
        if assertion.aws.source_identity is not None:
            result.append(("SourceIdentity", assertion.aws.source_identity))
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
