"""The broker session `broker login` keeps on this computer, and the calls made with it.

One file per broker URL, `<cache>/sessions/<hash of the URL>.json`, mode 0600 in a 0700
directory, written atomically; read only when it is the user's own and nobody else can write
it (broker.client's private-file rules). It holds the opaque broker session token: never an
IdP assertion or token, and nothing AWS would accept."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from broker.client import (
    CredentialProcessError,
    broker_url,
    cache_root,
    fetch_process_json,
    private_dir,
    read_private,
    refusal,
    write_private,
)


class LoginError(CredentialProcessError):
    """A command-line command failed; the message is one line for stderr."""


class SessionGone(LoginError):
    def __init__(self, url: str) -> None:
        super().__init__(f"your session at {url} has ended; run: broker login --url {url}")


@dataclass(frozen=True, slots=True)
class StoredSession:
    url: str
    access_token: str
    expires_at: float  # seconds since the epoch
    subject: str
    idp: str

    def live(self, now: datetime) -> bool:
        return self.expires_at > now.timestamp()

    def until(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def session_path(cache_dir: str | None, url: str) -> Path:
    digest = hashlib.sha256(url.encode()).hexdigest()[:40]
    return cache_root(cache_dir) / "sessions" / f"{digest}.json"


def load(cache_dir: str | None, url: str) -> StoredSession | None:
    path = session_path(cache_dir, url)
    if private_dir(path.parent.parent) is None or private_dir(path.parent) is None:
        return None
    text = read_private(path)
    if text is None:
        return None
    try:
        doc = json.loads(text)
        stored = StoredSession(**{k: doc[k] for k in StoredSession.__dataclass_fields__})
    except (ValueError, KeyError, TypeError):
        return None
    return stored if stored.url == url else None


def save(cache_dir: str | None, stored: StoredSession) -> Path:
    path = session_path(cache_dir, stored.url)
    if private_dir(path.parent.parent) is None or private_dir(path.parent) is None:
        raise LoginError(f"cannot keep the session safely in {path.parent}")
    try:
        write_private(path, json.dumps(asdict(stored)) + "\n")
    except OSError as exc:
        raise LoginError(f"cannot write {path}: {exc.strerror}") from None
    return path


def forget(cache_dir: str | None, url: str) -> bool:
    path = session_path(cache_dir, url)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def live_session(cache_dir: str | None, url: str) -> StoredSession:
    stored = load(cache_dir, url)
    if stored is None or not stored.live(datetime.now(UTC)):
        raise SessionGone(url)
    return stored


def call(
    stored: StoredSession,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    http: httpx.Client | None = None,
) -> dict[str, Any]:
    """A call to the broker's /cli API with the session token; a 401 means the session ended
    (or, for a role reached with the IdP's own assertion, that it is too old: the broker
    says so, and what to run)."""
    client = http or httpx.Client(timeout=30)
    try:
        response = client.request(
            method,
            stored.url + path,
            json=body,
            headers={
                "Authorization": f"Bearer {stored.access_token}",
                "Accept": "application/json",
            },
        )
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach {stored.url}: {type(exc).__name__}") from None
    finally:
        if http is None:
            client.close()
    raise_for_refusal(stored.url, response)
    try:
        doc = response.json()
    except ValueError:
        raise LoginError(f"{stored.url} answered something that is not JSON") from None
    if not isinstance(doc, dict):
        raise LoginError(f"{stored.url} answered something unexpected")
    return doc


def raise_for_refusal(url: str, response: httpx.Response) -> None:
    if response.status_code != 200:
        raise refused(url, response)


def session_credentials(args: argparse.Namespace, *, http: httpx.Client | None = None) -> str:
    """`broker credential-process` without a token option: the stored session's credentials,
    cached (keyed by the session token's hash, URL, role and duration) until near expiry."""
    url = broker_url(args.url)
    stored = live_session(args.cache_dir, url)
    return fetch_process_json(
        args,
        url + "/cli/credentials",
        stored.access_token,
        params={},
        http=http,
        refuse=lambda response: refused(url, response),
    )


def refused(url: str, response: httpx.Response) -> LoginError:
    """A 401 is a session that ended, unless the broker says the sign-in is only too old
    for a role reached with the IdP's own assertion (then its sentence says what to run)."""
    code = _code(response)
    if code == "ReauthenticationRequired":
        return LoginError(_detail(response))
    if response.status_code == 401:
        return SessionGone(url)
    return LoginError(refusal(response))


def _code(response: httpx.Response) -> str | None:
    try:
        doc = response.json()
    except ValueError:
        return None
    code = doc.get("code") if isinstance(doc, dict) else None
    return code if isinstance(code, str) else None


def _detail(response: httpx.Response) -> str:
    try:
        doc = response.json()
        detail = doc.get("detail")
        return detail if isinstance(detail, str) else refusal(response)
    except (ValueError, AttributeError):
        return refusal(response)


def warn(message: str) -> None:
    print(f"broker: {message}", file=sys.stderr)
