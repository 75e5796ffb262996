"""`broker credential-process`: fetch credentials for ~/.aws/config, cached until near expiry."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REFRESH_BEFORE = timedelta(minutes=5)


class CredentialProcessError(Exception):
    pass


def credential_process(args: argparse.Namespace) -> str:
    cache = None if args.no_cache else _cache_path(args)
    if cache is not None:
        cached = _read_cache(cache)
        if cached is not None:
            return cached
    token = _token(args)
    url = args.url.rstrip("/")
    if not url.endswith("/v1/credentials"):
        url += "/v1/credentials"
    body: dict[str, object] = {"role": args.role}
    if args.duration:
        body["duration_seconds"] = args.duration
    try:
        response = httpx.post(
            url,
            params={"format": "process"},
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.HTTPError as exc:
        raise CredentialProcessError(f"cannot reach the broker: {type(exc).__name__}") from None
    if response.status_code != 200:
        try:
            problem = response.json()
            why = f"{problem.get('code')}: {problem.get('detail')} (error_id {problem.get('error_id')})"
        except ValueError:
            why = f"HTTP {response.status_code}"
        raise CredentialProcessError(why)
    text = response.text
    if cache is not None:
        _write_cache(cache, text)
    return text


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CredentialProcessError(f"cannot read --token-file: {exc.strerror}") from None
    else:
        try:
            done = subprocess.run(
                shlex.split(args.token_command),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CredentialProcessError(f"--token-command failed: {type(exc).__name__}") from None
        if done.returncode != 0:
            raise CredentialProcessError(f"--token-command exited with {done.returncode}")
        token = done.stdout.strip()
    if not token:
        raise CredentialProcessError("the token is empty")
    return token


def _cache_path(args: argparse.Namespace) -> Path:
    base = Path(args.cache_dir) if args.cache_dir else Path.home() / ".cache" / "broker"
    key = "\0".join(
        [args.url, args.role, str(args.duration), args.token_file or args.token_command]
    )
    return base / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def _read_cache(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
        expiration = datetime.fromisoformat(json.loads(text)["Expiration"].replace("Z", "+00:00"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if expiration - datetime.now(UTC) <= REFRESH_BEFORE:
        return None
    return text


def _write_cache(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
