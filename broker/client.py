"""`broker credential-process`: fetch credentials for ~/.aws/config, cached until near expiry;
and the private cache every command-line command keeps its files in."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import ipaddress
import json
import os
import shlex
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx

REFRESH_BEFORE = timedelta(minutes=5)


class CredentialProcessError(Exception):
    pass


def credential_process(args: argparse.Namespace, *, http: httpx.Client | None = None) -> str:
    """With --token-file or --token-command, an OIDC token for /v1/credentials; without, the
    broker session `broker login` stored, for /cli/credentials."""
    if not args.token_file and not args.token_command:
        from broker.login.session import session_credentials

        return session_credentials(args, http=http)
    url = _endpoint(args.url)
    token = _token(args)
    return fetch_process_json(
        args,
        url,
        token,
        params={"format": "process"},
        http=http,
        refuse=lambda r: CredentialProcessError(refusal(r)),
    )


def fetch_process_json(
    args: argparse.Namespace,
    url: str,
    token: str,
    *,
    params: dict[str, str],
    http: httpx.Client | None,
    refuse: Callable[[httpx.Response], Exception],
) -> str:
    """credential_process JSON from `url` for `token`, through the cache (keyed by the token)."""
    cache = None if args.no_cache else _cache_path(args, token)
    if cache is not None:
        cached = _read_cache(cache)
        if cached is not None:
            return cached
    body: dict[str, object] = {"role": args.role}
    if args.duration:
        body["duration_seconds"] = args.duration
    client = http or httpx.Client(timeout=30)
    try:
        response = client.post(
            url,
            params=params,
            json=body,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise CredentialProcessError(f"cannot reach the broker: {type(exc).__name__}") from None
    finally:
        if http is None:
            client.close()
    if response.status_code != 200:
        raise refuse(response)
    text = response.text
    if cache is not None:
        _write_cache(cache, text)
    return text


def refusal(response: httpx.Response) -> str:
    """A refusal in one line: the problem's code, its sentence and its error_id."""
    try:
        problem = response.json()
        return (
            f"{problem.get('code')}: {problem.get('detail')} (error_id {problem.get('error_id')})"
        )
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}"


def broker_url(base: str) -> str:
    """RFC 6750 §5.3: a bearer token travels only over TLS. Plain http is for loopback (a
    local broker or a tunnel), the same rule as the server's own URLs (config.base)."""
    parts = urlsplit(base)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise CredentialProcessError(f"--url must be an absolute http(s) URL, not {base!r}")
    if parts.scheme.lower() == "http" and not _is_loopback(parts.hostname):
        raise CredentialProcessError(
            f"--url {base} would send the token in clear: use https "
            "(plain http is allowed only to localhost / 127.0.0.1 / ::1)"
        )
    return base.rstrip("/")


def _endpoint(base: str) -> str:
    url = broker_url(base)
    return url if url.endswith("/v1/credentials") else url + "/v1/credentials"


def _is_loopback(host: str) -> bool:
    # Not broker.config.base.is_loopback_url: importing the config models (pydantic) would
    # add most of a cached answer's run time.
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def cache_root(cache_dir: str | None) -> Path:
    """--cache-dir, else $XDG_CACHE_HOME/broker, else ~/.cache/broker."""
    if cache_dir:
        return Path(cache_dir)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():  # XDG Base Directory: relative paths are invalid
        return Path(xdg) / "broker"
    return Path.home() / ".cache" / "broker"


def private_dir(base: Path) -> Path | None:
    """`base`, created 0700 if missing; None (and a note on stderr) when it is not the
    user's own or others could write to it."""
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        problem = _unsafe(base.lstat(), directory=True)
    except OSError as exc:
        problem = f"cannot use it: {exc.strerror}"
    if problem:
        _warn(base, problem)
        return None
    return base


def _cache_path(args: argparse.Namespace, token: str) -> Path | None:
    """Keyed by the token itself (hashed), so another identity behind the same token file or
    command never gets these credentials; None when the directory is not safe to use."""
    base = private_dir(cache_root(args.cache_dir))
    if base is None:
        return None
    key = "\0".join([args.url, args.role, str(args.duration), token])
    return base / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"


def _unsafe(st: os.stat_result, *, directory: bool) -> str | None:
    """What makes a cache entry untrustworthy: someone else could have written it."""
    if directory and not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if not directory and not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid != os.geteuid():
        return f"not owned by you (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "writable by group or others"
    return None


def _warn(path: Path, problem: str) -> None:
    print(f"broker credential-process: not using the cache: {path} is {problem}", file=sys.stderr)


def _read_cache(path: Path) -> str | None:
    text = read_private(path)
    if text is None:
        return None
    try:
        expiration = datetime.fromisoformat(json.loads(text)["Expiration"].replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if expiration - datetime.now(UTC) <= REFRESH_BEFORE:
        return None
    return text


def read_private(path: Path) -> str | None:
    """The file's text if it is a regular file of the user's own that nobody else can write
    (never through a symlink); None otherwise, with a note on stderr when it is unsafe."""
    try:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except FileNotFoundError:
        return None
    except OSError:
        problem = _unsafe(path.lstat(), directory=False) if path.is_symlink() else None
        if problem:
            _warn(path, problem)
        return None
    with os.fdopen(fd, "rb") as f:
        problem = _unsafe(os.fstat(f.fileno()), directory=False)
        if problem:
            _warn(path, problem)
            return None
        try:
            return f.read(64 * 1024).decode("utf-8")
        except (OSError, ValueError):
            return None


def _write_cache(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):  # a cache that cannot be written: a slower next run
        write_private(path, text)


def write_private(path: Path, text: str) -> None:
    """Atomically (a temporary file in the same directory, then rename), mode 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise
