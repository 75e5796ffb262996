"""What the command-line sign-in tests share: PKCE pairs, /cli/authorize requests, the code a
redirect carries, token requests, and the `broker` command run as a subprocess."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

CLIENT_ID = "broker-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
BROKER = str(Path(sys.executable).with_name("broker"))


@dataclass
class Pkce:
    """One authorization request's secrets, as a client makes them."""

    redirect_uri: str = "http://127.0.0.1:50505/callback"
    state: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def params(self, **over: str) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(over)
        return params

    def token_form(self, code: str, over: dict[str, str] | None = None) -> dict[str, str]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": self.verifier,
            "redirect_uri": self.redirect_uri,
            "client_id": CLIENT_ID,
        }
        form.update(over or {})
        return form


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize(client: httpx.Client, pkce: Pkce, decision: str = "allow") -> httpx.Response:
    """The signed-in browser's two steps: the confirm page, then its button."""
    page = client.get("/cli/authorize", params=pkce.params(), headers={"accept": "text/html"})
    assert page.status_code == 200, page.text[:500]
    form = {**pkce.params(), "csrf": csrf_of(page), "decision": decision}
    return client.post("/cli/authorize", data=form)


def device_form(device_code: str) -> dict[str, str]:
    return {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": CLIENT_ID}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": "application/json"}


def broker_command(
    *args: str, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[str]:
    """`broker ARGS…` from this environment, stdout and stderr piped as text."""
    return subprocess.Popen(
        [BROKER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )
