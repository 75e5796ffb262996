"""STS's answers, read: the Result's credentials, an ErrorResponse's code, the error each becomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from broker.errors import (
    BrokerError,
    StsAccessDenied,
    StsInvalidIdentityToken,
    StsRefused,
    StsThrottled,
    StsTokenExpired,
    StsUnavailable,
)
from broker.identity import Credentials

_NS = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)
# STS codes worth another try: throttling and the server's own transient failures.
RETRYABLE = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "IDPCommunicationError",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
}
_THROTTLE = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
}


@dataclass(frozen=True, slots=True)
class Failure:
    """One attempt that did not return credentials: STS's code, or ConnectionError (status 0)."""

    code: str
    message: str
    status: int

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE or self.status >= 500 or self.status == 0

    @property
    def throttled(self) -> bool:
        return self.code in _THROTTLE


def parse_error(body: bytes, status: int) -> Failure:
    try:
        root = etree.fromstring(body, _PARSER)
        code = root.findtext(".//s:Error/s:Code", namespaces=_NS) or root.findtext(".//Error/Code")
        message = root.findtext(".//s:Error/s:Message", namespaces=_NS) or root.findtext(
            ".//Error/Message"
        )
    except etree.XMLSyntaxError:
        code = message = None
    return Failure(code or f"HTTP{status}", (message or "")[:300], status)


def translate(f: Failure, action: str) -> BrokerError:
    extra = {"sts_code": f.code, "sts_message": f.message} if f.message else {"sts_code": f.code}
    kind = "AssumeRoleWithSAML" if action == "AssumeRoleWithSAML" else "AssumeRoleWithWebIdentity"
    if f.code == "AccessDenied" or f.code == "IDPRejectedClaim":
        hint = (
            "check Principal.Federated is the SAML provider's ARN and SAML:aud is the broker's ACS URL"
            if kind == "AssumeRoleWithSAML"
            else "check Principal.Federated is this issuer's OIDC provider ARN and the "
            "<issuer>:aud and <issuer>:sub conditions match the token"
        )
        return StsAccessDenied(
            f"AWS refused: the role's trust policy does not allow sts:{kind} for this identity; {hint}.",
            extra=extra,
        )
    if f.code == "InvalidIdentityToken":
        return StsInvalidIdentityToken("AWS rejected the identity proof.", extra=extra)
    if f.code in ("ExpiredTokenException", "ExpiredToken"):
        return StsTokenExpired("AWS says the identity proof has expired.", extra=extra)
    if f.code in _THROTTLE:
        return StsThrottled(
            "AWS STS is throttling requests; try again shortly.",
            extra=extra,
            headers={"Retry-After": "2"},
        )
    if f.retryable:
        return StsUnavailable(
            "AWS STS could not be reached; try again shortly.",
            extra=extra,
            headers={"Retry-After": "5"},
        )
    return StsRefused(f"AWS STS refused the request ({f.code}).", extra=extra)


def credentials(body: bytes, action: str) -> Credentials:
    """Read the Result's Credentials and AssumedRoleUser (this is on every request)."""
    try:
        root = etree.fromstring(body, _PARSER)
        result = root.find(_RESULT_TAGS[action])
        if result is None:
            raise ValueError(f"no {action}Result element")
        found: dict[str, str] = {}
        for parent in (result.find(_CREDENTIALS_TAG), result.find(_ROLE_USER_TAG)):
            if parent is not None:
                for el in parent:
                    if el.text:
                        found[el.tag] = el.text
        missing = [k for k in _REQUIRED if _NS_PREFIX + k not in found]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        return Credentials(
            access_key_id=found[_NS_PREFIX + "AccessKeyId"],
            secret_access_key=found[_NS_PREFIX + "SecretAccessKey"],
            session_token=found[_NS_PREFIX + "SessionToken"],
            expiration=_timestamp(found[_NS_PREFIX + "Expiration"]),
            assumed_role_arn=found[_NS_PREFIX + "Arn"],
            assumed_role_id=found.get(_NS_PREFIX + "AssumedRoleId", ""),
        )
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise StsRefused(
            "AWS STS sent a response the broker cannot read.", log_detail=f"{action}: {exc}"
        ) from None


_NS_PREFIX = "{" + _NS["s"] + "}"
_RESULT_TAGS = {
    a: f"{_NS_PREFIX}{a}Result" for a in ("AssumeRoleWithWebIdentity", "AssumeRoleWithSAML")
}
_CREDENTIALS_TAG = _NS_PREFIX + "Credentials"
_ROLE_USER_TAG = _NS_PREFIX + "AssumedRoleUser"
_REQUIRED = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Arn")


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
