"""`broker login`: OAuth 2.0 for native apps against the broker, in a browser on this computer
(loopback redirect, RFC 8252, with PKCE, RFC 7636) or on any other (device grant, RFC 8628).

PKCE's verifier and challenge and the random `state` come from authlib's client helpers; the
token requests are plain form posts (httpx), since the answers carry the broker's own fields
(`subject`, `idp`) and its refusals are read by code."""

from __future__ import annotations

import hmac
import html
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from broker.login.session import LoginError, StoredSession

CLIENT_ID = "broker-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CALLBACK = "/callback"


@dataclass
class Callback:
    """What the browser brought back to the listener: a code, or the broker's error."""

    code: str | None = None
    error: str | None = None


class _Listener(HTTPServer):
    expected_state: str
    result: Callback | None


class _Handler(BaseHTTPRequestHandler):
    server: _Listener
    # A browser may open a connection it never uses (a speculative preconnect): drop it
    # instead of waiting on it forever.
    timeout = 5

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != CALLBACK:
            self._page(404, "Not found", "Nothing is at this address.")
            return
        query = {k: v[0] for k, v in parse_qs(parts.query).items() if v}
        state = query.get("state", "")
        if not hmac.compare_digest(state.encode(), self.server.expected_state.encode()):
            # RFC 6749 §10.12: an answer to a request this terminal did not make. Keep
            # waiting for the real one.
            print(
                "broker: ignored a sign-in answer that does not carry this login's state",
                file=sys.stderr,
            )
            self._page(
                400,
                "Not this sign-in",
                "This answer is not for the sign-in this "
                "terminal is waiting for. Start again with broker login.",
            )
            return
        if "error" in query:
            self.server.result = Callback(error=query["error"])
            self._page(
                200,
                "Sign-in denied",
                "The command line was not signed in. You can close this page.",
            )
            return
        code = query.get("code")
        if not code:
            self._page(400, "No code", "The answer carries no code.")
            return
        self.server.result = Callback(code=code)
        self._page(
            200,
            "Signed in",
            "The command line is signed in: go back to your terminal. You can close this page.",
        )

    def _page(self, status: int, title: str, text: str) -> None:
        body = (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            f'<body><main><h1 id="title">{html.escape(title)}</h1><p>{html.escape(text)}</p>'
            "</main></body></html>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # the request line carries the code: never print it


def loopback_login(
    url: str,
    *,
    open_browser: Callable[[str], bool],
    timeout: float,
    http: httpx.Client,
) -> StoredSession:
    """RFC 8252 §7.3: listen on 127.0.0.1 (any free port), send the browser to the broker's
    /cli/authorize, wait for the code, then trade it with the PKCE verifier."""
    verifier = generate_token(64)  # RFC 7636 §4.1: 43-128 unreserved characters
    state = generate_token(32)
    listener = _Listener(("127.0.0.1", 0), _Handler)
    listener.expected_state = state
    listener.result = None
    listener.timeout = 0.5
    try:
        port = listener.server_address[1]
        redirect_uri = f"http://127.0.0.1:{port}{CALLBACK}"
        query = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        authorize = f"{url}/cli/authorize?{urlencode(query)}"
        if not open_browser(authorize):
            print(
                "broker: open this address in a browser on this computer to sign in:\n\n"
                f"  {authorize}\n",
                file=sys.stderr,
                flush=True,
            )
        else:
            print("broker: continue the sign-in in your browser…", file=sys.stderr, flush=True)
        deadline = time.monotonic() + timeout
        while listener.result is None:
            if time.monotonic() >= deadline:
                raise LoginError(f"no answer from the browser within {timeout:g} seconds")
            listener.handle_request()
        result = listener.result
    finally:
        listener.server_close()
    if result.error is not None:
        raise LoginError(f"the sign-in was not completed: {result.error}")
    assert result.code is not None
    form = {
        "grant_type": "authorization_code",
        "code": result.code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
        "client_id": CLIENT_ID,
    }
    return _stored(url, token_request(http, url, form))


def device_login(
    url: str,
    *,
    timeout: float,
    http: httpx.Client,
    sleep: Callable[[float], None] = time.sleep,
) -> StoredSession:
    """RFC 8628: show the code, then poll at the interval the broker asks, slower on
    slow_down (§3.5: five more seconds each time)."""
    response = _post(http, url + "/cli/device", {"client_id": CLIENT_ID})
    if response.status_code != 200:
        raise LoginError(f"the broker refused a device code: {_oauth_error(response)}")
    grant = response.json()
    print(
        f"broker: to sign in, open {grant['verification_uri']} in a browser on any device and "
        f"enter the code\n\n    {grant['user_code']}\n\n(or open "
        f"{grant['verification_uri_complete']})",
        file=sys.stderr,
        flush=True,
    )
    interval = float(grant.get("interval") or 5)
    deadline = time.monotonic() + min(timeout, float(grant.get("expires_in") or timeout))
    form = {"grant_type": DEVICE_GRANT, "device_code": grant["device_code"], "client_id": CLIENT_ID}
    while True:
        if time.monotonic() >= deadline:
            raise LoginError("the code was not approved in time; run broker login --device again")
        sleep(interval)
        response = _post(http, url + "/cli/token", form)
        if response.status_code == 200:
            return _stored(url, _json(response))
        error = _oauth_error(response)
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        if error == "access_denied":
            raise LoginError("the sign-in was denied in the browser")
        if error == "expired_token":
            raise LoginError("the code expired before it was approved; run broker login again")
        raise LoginError(f"the broker refused the sign-in: {error}")


def token_request(http: httpx.Client, url: str, form: dict[str, str]) -> dict[str, Any]:
    response = _post(http, url + "/cli/token", form)
    if response.status_code != 200:
        raise LoginError(f"the broker refused the sign-in: {_oauth_error(response)}")
    return _json(response)


def _post(http: httpx.Client, url: str, form: dict[str, str]) -> httpx.Response:
    try:
        return http.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach {url}: {type(exc).__name__}") from None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise LoginError("the broker answered something that is not a JSON object")
    return doc


def _oauth_error(response: httpx.Response) -> str:
    """RFC 6749 §5.2's `error`, or the broker's problem code, or the status."""
    try:
        doc = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(doc, dict):
        for key in ("error", "code"):
            if isinstance(doc.get(key), str):
                return str(doc[key])
    return f"HTTP {response.status_code}"


def _stored(url: str, doc: dict[str, Any]) -> StoredSession:
    try:
        token, expires_in = doc["access_token"], int(doc["expires_in"])
    except (KeyError, TypeError, ValueError):
        raise LoginError("the broker's answer carries no session token") from None
    if not isinstance(token, str) or doc.get("token_type", "").lower() != "bearer":
        raise LoginError("the broker's answer carries no bearer token")
    expires_at = datetime.now(UTC).timestamp() + expires_in
    return StoredSession(url, token, expires_at, str(doc.get("subject")), str(doc.get("idp")))
