"""The AWS console sign-in: allow-listed destination, getSigninToken, then the Action=login URL."""

from __future__ import annotations

import json
import re
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from broker.aws.arn import MAX_SESSION_SECONDS, MIN_SESSION_SECONDS
from broker.aws.partitions import partition as partition_info
from broker.aws.transport import PooledTransport, TransportError
from broker.config import AwsSettings
from broker.errors import FederationRefused, InvalidParameter, RedirectNotAllowed
from broker.identity import Credentials, Identity, RoleGrant

# Shortcut → console path. Global services (IAM) ignore the region parameter.
SERVICES = {
    "console": "console/home",
    "s3": "s3/home",
    "ec2": "ec2/home",
    "iam": "iam/home",
    "lambda": "lambda/home",
    "cloudwatch": "cloudwatch/home",
    "cloudformation": "cloudformation/home",
    "cloudtrail": "cloudtrail/home",
    "dynamodb": "dynamodbv2/home",
    "rds": "rds/home",
    "vpc": "vpc/home",
    "ecs": "ecs/home",
    "eks": "eks/home",
    "sqs": "sqs/v3/home",
    "sns": "sns/v3/home",
    "kms": "kms/home",
    "secretsmanager": "secretsmanager/home",
    "billing": "billing/home",
}
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_GET_TOKEN_TIMEOUT = 10.0  # the whole call, waiting for a pooled connection included
_CONNECT_TIMEOUT = 5.0
# A person's click is one call: this many open connections cover hundreds of clicks a second.
_MAX_CONNECTIONS = 128
# getSigninToken answers {"SigninToken": "…"}, a few KB; anything far larger is not it.
_MAX_RESPONSE = 64 * 1024


def destination_url(partition: str, destination: str | None, region: str | None) -> str:
    """Redirects go only to allow-listed destinations (DESIGN.md): a service shortcut, a path
    on the partition's console host, or an https URL on that host or a regional subdomain."""
    host = partition_info(partition).console_host
    if region is not None and region != "" and not REGION.fullmatch(region):
        raise InvalidParameter("region is not an AWS region name.")
    dest = (destination or "console").strip()
    if dest.lower() in SERVICES:
        url = f"https://{host}/{SERVICES[dest.lower()]}"
    elif dest.startswith("/") and not dest.startswith("//") and "\\" not in dest:
        url = f"https://{host}{dest}"
    elif _on_console_host(dest, host):
        url = dest
    else:
        raise RedirectNotAllowed(
            "That destination is not an AWS console page.",
            log_detail=f"destination refused for partition {partition}",
        )
    if region and "region=" not in (urlsplit(url).query or ""):
        url += ("&" if "?" in url else "?") + urlencode({"region": region})
    return url


def _on_console_host(url: str, host: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    name = (parts.hostname or "").lower()
    return (
        parts.scheme == "https"
        and parts.username is None
        and parts.password is None
        and port in (None, 443)
        and (name == host or name.endswith("." + host))
        and "\\" not in url
    )


def session_duration(identity: Identity, grant: RoleGrant, now: datetime) -> int:
    """min(SessionDuration attribute, SessionNotOnOrAfter, role maximum, 43200), floored at the
    federation endpoint's 900."""
    limits = [grant.max_session_seconds, MAX_SESSION_SECONDS]
    if identity.session_duration is not None:
        limits.append(identity.session_duration)
    if identity.session_not_on_or_after is not None:
        limits.append(int((identity.session_not_on_or_after - now).total_seconds()))
    return max(MIN_SESSION_SECONDS, min(limits))


class Federation:
    """The federation endpoint's getSigninToken on a pool of keep-alive connections of its own
    (the transport STS calls use: proxies from the environment, TLS verified, bounded). The
    request's query carries the session's credentials, so nothing here logs a URL, and the
    transport logs nothing."""

    def __init__(self, aws: AwsSettings, *, timeout: float = _GET_TOKEN_TIMEOUT) -> None:
        self.endpoint = aws.federation_url()
        self._transport = PooledTransport(
            self.endpoint,
            timeout=timeout,
            connect_timeout=min(_CONNECT_TIMEOUT, timeout),
            max_connections=_MAX_CONNECTIONS,
            max_response=_MAX_RESPONSE,
        )

    async def close(self) -> None:
        await self._transport.close()

    async def signin_url(
        self,
        creds: Credentials,
        *,
        issuer: str,
        destination: str,
        duration: int | None,
    ) -> str:
        """getSigninToken (SessionDuration only for AssumeRoleWith* credentials, which is all
        the broker issues), then the login URL. The sign-in token lives ~15 minutes: mint per
        click."""
        session = {
            "sessionId": creds.access_key_id,
            "sessionKey": creds.secret_access_key,
            "sessionToken": creds.session_token,
        }
        params = {"Action": "getSigninToken", "Session": json.dumps(session)}
        if duration is not None:
            params["SessionDuration"] = str(duration)
        try:
            resp = await self._transport.get(urlencode(params))
        except TransportError as exc:
            raise FederationRefused(
                "The AWS sign-in service could not be reached; try again.",
                log_detail=f"getSigninToken transport error: {exc}",
            ) from None
        token = None
        if resp.status == 200:
            try:
                body = json.loads(resp.body)
                token = body.get("SigninToken") if isinstance(body, dict) else None
            except (ValueError, RecursionError):  # not JSON (or UTF-8), or nested past reason
                token = None
        if not isinstance(token, str) or not token:
            raise FederationRefused(
                "The AWS sign-in service refused the console session.",
                log_detail=f"getSigninToken status={resp.status}",
            )
        query = urlencode(
            {"Action": "login", "Issuer": issuer, "Destination": destination, "SigninToken": token}
        )
        return f"{self.endpoint}?{query}"
