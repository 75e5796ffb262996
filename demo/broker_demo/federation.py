"""The stand-in's federation endpoint (getSigninToken, login) and the fake console that proves a session."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from html import escape
from urllib.parse import quote, urlsplit

import anyio.to_thread
import boto3
import botocore.config
import botocore.exceptions
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)

from broker_demo.state import ConsoleSession, FederationCall, Registry

COOKIE = "aws-standin-console"
DEFAULT_SESSION_DURATION = 43200
CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-us-gov": "console.amazonaws-us-gov.com",
    "aws-cn": "console.amazonaws.cn",
}
REGIONS = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}
NO_STORE = {"cache-control": "no-store"}

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — Local AWS stand-in, not AWS</title></head>
<body style="font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;\
overflow-wrap:anywhere">
<header><p id="banner" style="background:#fde68a;padding:.5em;font-weight:bold">
Local AWS stand-in — this is not AWS</p></header>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"""


def page(title: str, body_html: str, status: int) -> HTMLResponse:
    """`body_html` must already be escaped; the title is escaped here."""
    return HTMLResponse(_PAGE.format(title=escape(title), body=body_html), status, headers=NO_STORE)


def console_destination_allowed(destination: str, partition: str) -> bool:
    """Only https URLs on this partition's console host (or a regional subdomain of it)."""
    try:
        parts = urlsplit(destination)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    console = CONSOLE_HOSTS[partition]
    return (
        parts.scheme == "https"
        and parts.username is None
        and parts.password is None
        and port in (None, 443)
        and (host == console or host.endswith("." + console))
    )


def _caller_arn(base_url: str, region: str, key: str, secret: str, token: str) -> str:
    """Runs in a worker thread: real botocore against our own STS."""
    client = boto3.session.Session().client(
        "sts",
        endpoint_url=base_url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=botocore.config.Config(
            retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10
        ),
    )
    return client.get_caller_identity()["Arn"]


class FederationService:
    """GET /federation (getSigninToken, login) and GET /console."""

    def __init__(
        self,
        registry: Registry,
        *,
        partition: str,
        latency_seconds: float,
        clock: Callable[[], datetime],
        base_url: Callable[[], str | None],
    ) -> None:
        self._registry = registry
        self._partition = partition
        self._latency = latency_seconds
        self._clock = clock
        self._base_url = base_url

    async def federation(self, request: Request) -> Response:
        if self._latency > 0:
            await asyncio.sleep(self._latency)
        params = dict(request.query_params)
        if request.method == "POST":
            params.update({k: v for k, v in (await request.form()).items() if isinstance(v, str)})
        action = params.get("Action", "")
        if action == "getSigninToken":
            return self._get_signin_token(params)
        if action == "login":
            return self._login(params)
        self._registry.record_federation(FederationCall(action=action, outcome="unknown action"))
        return PlainTextResponse("Unknown Action", 400, headers=NO_STORE)

    def _refuse(self, call: FederationCall, reason: str) -> Response:
        """AWS answers a bad federation request with 400 and a short text body."""
        self._registry.record_federation(dataclasses.replace(call, outcome=reason))
        return PlainTextResponse(reason, 400, headers=NO_STORE)

    def _get_signin_token(self, params: dict[str, str]) -> Response:
        call = FederationCall(action="getSigninToken", outcome="")
        raw_duration = params.get("SessionDuration")
        duration = DEFAULT_SESSION_DURATION
        if raw_duration is not None:
            if not raw_duration.isdigit() or not 900 <= int(raw_duration) <= 43200:
                return self._refuse(call, "Invalid SessionDuration: must be 900 to 43200 seconds")
            duration = int(raw_duration)
        call = FederationCall("getSigninToken", "", session_duration=duration)
        try:
            session = json.loads(params.get("Session", ""))
            key, secret, token = (session[k] for k in ("sessionId", "sessionKey", "sessionToken"))
        except (ValueError, KeyError, TypeError):
            key = secret = token = None
        if not all(isinstance(v, str) for v in (key, secret, token)):
            return self._refuse(
                call, "Invalid Session: expected sessionId, sessionKey, sessionToken"
            )
        issued = self._registry.session(key)
        now = self._clock()
        if (
            issued is None
            or not hmac.compare_digest(secret.encode(), issued.secret_access_key.encode())
            or not hmac.compare_digest(token.encode(), issued.session_token.encode())
        ):
            return self._refuse(call, "Invalid credentials")
        call = FederationCall("getSigninToken", "", issued.role_arn, duration)
        if issued.expiration <= now:
            return self._refuse(call, "Credentials expired")
        signin_token = self._registry.new_signin_token(key, duration, now)
        self._registry.record_federation(
            FederationCall("getSigninToken", "ok", issued.role_arn, duration)
        )
        return JSONResponse({"SigninToken": signin_token}, headers=NO_STORE)

    def _login(self, params: dict[str, str]) -> Response:
        destination = params.get("Destination", "")
        call = FederationCall("login", "", destination=destination)
        if not console_destination_allowed(destination, self._partition):
            return self._refuse(call, f"Invalid Destination: not a {self._partition} console URL")
        now = self._clock()
        entry = self._registry.redeem_signin_token(params.get("SigninToken", ""), now)
        if entry is None:
            return self._refuse(call, "Invalid SigninToken: unknown, expired or already used")
        issued = self._registry.session(entry.access_key_id)
        if issued is None or issued.expiration <= now:
            return self._refuse(call, "Credentials expired")
        expires = min(now + timedelta(seconds=entry.session_duration), issued.expiration)
        cookie = self._registry.new_console_session(
            ConsoleSession(entry.access_key_id, destination, expires)
        )
        self._registry.record_federation(
            FederationCall("login", "ok", issued.role_arn, entry.session_duration, destination)
        )
        response = RedirectResponse(f"/console?destination={quote(destination, safe='')}", 302)
        response.headers["cache-control"] = "no-store"
        max_age = max(1, int((expires - now).total_seconds()))
        response.set_cookie(
            COOKIE, cookie, max_age=max_age, path="/", httponly=True, samesite="lax"
        )
        return response

    async def console(self, request: Request) -> Response:
        now = self._clock()
        console = self._registry.console_session(request.cookies.get(COOKIE, ""), now)
        issued = None if console is None else self._registry.session(console.access_key_id)
        if console is None or issued is None:
            return page(
                "Not signed in", "<p>No console session: sign in through the broker.</p>", 401
            )
        base_url = self._base_url() or str(request.base_url).rstrip("/")
        try:
            arn = await anyio.to_thread.run_sync(
                _caller_arn,
                base_url,
                REGIONS[self._partition],
                issued.access_key_id,
                issued.secret_access_key,
                issued.session_token,
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            reason = type(exc).__name__
            if isinstance(exc, botocore.exceptions.ClientError):
                reason = exc.response.get("Error", {}).get("Code", reason)
            return page(
                "Console unavailable", f"<p>GetCallerIdentity failed: {escape(reason)}</p>", 502
            )
        body = (
            f'<p>Signed in as <code id="caller-arn">{escape(arn)}</code></p>\n'
            f'<p>The real console would now open <code id="destination">'
            f"{escape(console.destination)}</code></p>\n"
            f"<p>Session ends {escape(console.expires_at.strftime('%Y-%m-%dT%H:%M:%SZ'))}</p>"
        )
        return page("Console session", body, 200)
