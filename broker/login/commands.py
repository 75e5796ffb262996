"""`broker login | logout | console | configure`: a terminal signed in through the browser, and
what it does with that session. Machine output goes to stdout, everything for people to stderr."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from broker.client import CredentialProcessError, broker_url
from broker.login import awsconfig
from broker.login.session import (
    LoginError,
    forget,
    live_session,
    load,
    save,
    session_path,
    warn,
)


def add_commands(sub: Any) -> None:
    login = sub.add_parser("login", help="sign this terminal in through the browser")
    _common(login)
    login.add_argument(
        "--no-browser", action="store_true", help="print the address to open instead of opening it"
    )
    login.add_argument(
        "--device",
        action="store_true",
        help="approve with a code in a browser on any device (RFC 8628)",
    )
    login.add_argument("--timeout", type=float, default=300, help="seconds to wait (300)")
    login.set_defaults(func=_login)

    logout = sub.add_parser("logout", help="end this terminal's broker session")
    _common(logout)
    logout.set_defaults(func=_logout)

    console = sub.add_parser("console", help="open the AWS console as a role")
    _common(console)
    console.add_argument("--role", required=True, help="role name or ARN")
    console.add_argument("--destination", help="a service shortcut (s3, ec2…) or console path")
    console.add_argument("--region")
    console.add_argument("--no-browser", action="store_true", help="print the URL instead")
    console.set_defaults(func=_console)

    configure = sub.add_parser(
        "configure", help="write an AWS CLI profile for each role you have (~/.aws/config)"
    )
    _common(configure)
    configure.add_argument("--region", help="region = … in each profile")
    configure.add_argument("--prefix", default="", help="put this before each profile's name")
    configure.add_argument(
        "--dry-run", action="store_true", help="print the change as a diff; write nothing"
    )
    configure.set_defaults(func=_configure)


def url_argument(parser: argparse.ArgumentParser) -> None:
    """`--url`, or $BROKER_URL when it is set (so a shell or a team's dotfiles name the broker
    once)."""
    default = os.environ.get("BROKER_URL") or None
    parser.add_argument(
        "--url",
        default=default,
        required=default is None,
        help="the broker's base URL (default: $BROKER_URL)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    url_argument(parser)
    parser.add_argument("--cache-dir", help="default: $XDG_CACHE_HOME/broker or ~/.cache/broker")


def run(command: Any, args: argparse.Namespace) -> int:
    try:
        return int(command(args))
    except CredentialProcessError as exc:
        warn(str(exc))
        return 1


def _login(args: argparse.Namespace) -> int:
    return run(_do_login, args)


def _do_login(args: argparse.Namespace) -> int:
    from broker.login.flow import device_login, loopback_login

    url = broker_url(args.url)
    with httpx.Client(timeout=30) as http:
        if args.device:
            stored = device_login(url, timeout=args.timeout, http=http)
        else:
            opener = (lambda _: False) if args.no_browser else _open
            stored = loopback_login(url, open_browser=opener, timeout=args.timeout, http=http)
    path = save(args.cache_dir, stored)
    warn(f"signed in to {url} as {stored.subject} ({stored.idp}) until {stored.until()}")
    warn(f"the session is kept in {path}")
    return 0


def _logout(args: argparse.Namespace) -> int:
    return run(_do_logout, args)


def _do_logout(args: argparse.Namespace) -> int:
    url = broker_url(args.url)
    stored = load(args.cache_dir, url)
    if stored is None:
        forget(args.cache_dir, url)
        warn(f"no session for {url} on this computer")
        return 0
    try:
        with httpx.Client(timeout=10) as http:
            response = http.post(
                url + "/cli/logout",
                headers={
                    "Authorization": f"Bearer {stored.access_token}",
                    "Accept": "application/json",
                },
            )
    except httpx.HTTPError as exc:
        forget(args.cache_dir, url)
        warn(
            f"cannot reach {url} ({type(exc).__name__}), so the session was not revoked there; "
            f"this computer no longer keeps it ({session_path(args.cache_dir, url)} deleted)"
        )
        return 1
    forget(args.cache_dir, url)
    if response.status_code in (200, 401):  # 401: it had already ended
        warn(f"signed out of {url}")
        return 0
    warn(f"{url} answered HTTP {response.status_code}; the local session was deleted anyway")
    return 1


def _console(args: argparse.Namespace) -> int:
    return run(_do_console, args)


def _do_console(args: argparse.Namespace) -> int:
    from broker.login.session import call

    url = broker_url(args.url)
    stored = live_session(args.cache_dir, url)
    body = {"role": args.role, "destination": args.destination, "region": args.region}
    answer = call(stored, "POST", "/cli/console", body={k: v for k, v in body.items() if v})
    signin = answer.get("url")
    if not isinstance(signin, str):
        raise LoginError("the broker's answer carries no console URL")
    if args.no_browser or not _open(signin):
        print(signin)
    return 0


def _configure(args: argparse.Namespace) -> int:
    return run(_do_configure, args)


def _do_configure(args: argparse.Namespace) -> int:
    from broker.login.session import call

    url = broker_url(args.url)
    stored = live_session(args.cache_dir, url)
    roles = call(stored, "GET", "/cli/roles").get("roles")
    if not isinstance(roles, list):
        raise LoginError("the broker's answer carries no roles")
    profiles = profiles_for(roles, prefix=args.prefix, region=args.region)
    command = credential_process_command(url, args.cache_dir)
    path = awsconfig.config_path()
    old = awsconfig.read(path)
    try:
        new, skipped = awsconfig.apply(old, url, profiles, command)
    except awsconfig.BlockError as exc:
        raise LoginError(f"{path}: {exc}; fix or remove it by hand") from None
    for name in skipped:
        warn(f"skipped the profile {name}: {path} already has one by that name outside its block")
    if args.dry_run:
        import difflib

        sys.stdout.writelines(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=str(path),
                tofile=str(path),
            )
        )
        return 0
    if new != old:
        try:
            awsconfig.write(path, new)
        except OSError as exc:
            raise LoginError(f"cannot write {path}: {exc.strerror}") from None
    written = [p.name for p in profiles if p.name not in skipped]
    warn(f"{len(written)} profile(s) for {url} in {path}: {', '.join(written) or 'none'}")
    return 0


def profiles_for(roles: list[Any], *, prefix: str, region: str | None) -> list[awsconfig.Profile]:
    """One profile per granted role, named after it; a name two accounts share gets the
    account ID after it, and the ARN as its --role."""
    names = Counter(r.get("name") for r in roles if isinstance(r, dict))
    out = []
    for r in roles:
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            continue
        name, arn = r["name"], str(r.get("arn", ""))
        if names[name] > 1:
            out.append(awsconfig.Profile(f"{prefix}{name}-{r.get('account_id')}", arn, region))
        else:
            out.append(awsconfig.Profile(f"{prefix}{name}", name, region))
    return sorted(out, key=lambda p: p.name)


def credential_process_command(url: str, cache_dir: str | None) -> str:
    """`broker credential-process --url URL` with the running broker's absolute path when a
    plain `broker` on PATH would not be this one."""
    words = [_executable(), "credential-process", "--url", shlex.quote(url)]
    if cache_dir:
        words += ["--cache-dir", shlex.quote(str(Path(cache_dir).resolve()))]
    return " ".join(words)


def _executable() -> str:
    running = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    on_path = shutil.which("broker")
    if running is not None and running.name == "broker" and running.is_file():
        if on_path is not None and Path(on_path).resolve() == running:
            return "broker"
        return shlex.quote(str(running))
    if on_path is not None:
        return "broker"
    return f"{shlex.quote(sys.executable)} -m broker"


def _open(url: str) -> bool:
    import webbrowser  # only for the commands that open one

    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False
