"""`broker login` as people run it: the command in a terminal (a subprocess), the confirm in a
real browser that signed in through the IdP, then `broker configure`, the real AWS CLI and
botocore reading its profiles, `broker console` and `broker logout`."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import boto3
import botocore.session
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.fakes.browser import AXE, findings, screenshot
from tests.fakes.cli_login import CLIENT_ID, Pkce, broker_command, query_of
from tests.fakes.saml_world import SamlWorld

pytestmark = pytest.mark.browser
AUTHORIZE = re.compile(r"^\s+(http://\S+/cli/authorize\?\S+)$")


def _read_until(
    proc: subprocess.Popen[str], pattern: re.Pattern[str], limit: int = 40
) -> re.Match[str]:
    assert proc.stderr is not None
    said = []
    for _ in range(limit):
        line = proc.stderr.readline()
        said.append(line)
        found = pattern.search(line)
        if found:
            return found
        if not line and proc.poll() is not None:
            break
    raise AssertionError("the command never said it: " + "".join(said))


def _finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _signed_in_page(chromium: Browser, idp_url: str) -> Page:
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(idp_url + "/portal")
    expect(page.locator("h1")).to_have_text("AWS accounts")
    return page


RUNNING: list[subprocess.Popen[str]] = []


@dataclass
class Terminal:
    """A terminal that ran `broker login`: its cache directory and its environment."""

    cache: Path
    env: dict[str, str]
    world: SamlWorld

    def broker(self, *args: str) -> subprocess.Popen[str]:
        proc = broker_command(
            *args, "--url", self.world.url, "--cache-dir", str(self.cache), env=self.env
        )
        RUNNING.append(proc)
        return proc

    def token(self) -> str:
        [path] = (self.cache / "sessions").iterdir()
        return path.read_text().split('"access_token": "')[1].split('"')[0]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        PATH="/usr/bin:/bin",  # the venv's broker is not on PATH: configure must say where it is
    )
    return env


def _login(terminal: Terminal, chromium: Browser, idp_url: str) -> tuple[int, str, str]:
    """`broker login --no-browser`, its URL opened in a browser already signed in."""
    proc = terminal.broker("login", "--no-browser", "--timeout", "60")
    url = _read_until(proc, AUTHORIZE).group(1)
    page = _signed_in_page(chromium, idp_url)
    codes: list[str] = []
    page.on(
        "request",
        lambda r: codes.append(query_of(r.url).get("code", "")) if "/callback?" in r.url else None,
    )
    page.goto(url)
    expect(page.locator("#question")).to_contain_text(
        "Sign in the command line on this computer as alice@example.com"
    )
    screenshot(page, "cli-authorize")
    page.get_by_role("button", name="Sign in the command line").click()
    expect(page.locator("#title")).to_have_text("Signed in")
    page.context.close()
    terminal.world.secrets += [c for c in codes if c]
    return _finish(proc)


@pytest.fixture(scope="module", autouse=True)
def _no_command_left_running() -> Iterator[None]:
    yield
    for proc in RUNNING:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def terminal(
    idp_world: tuple[SamlWorld, str], chromium: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Terminal:
    world, idp_url = idp_world
    tmp = tmp_path_factory.mktemp("terminal")
    terminal = Terminal(tmp / "cache", _env(tmp), world)
    code, out, err = _login(terminal, chromium, idp_url)
    assert code == 0, err
    assert out == ""
    assert "signed in to" in err
    world.secrets.append(terminal.token())
    assert terminal.token() not in err
    return terminal


def test_login_keeps_a_private_session(terminal: Terminal) -> None:
    [path] = (terminal.cache / "sessions").iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert terminal.token().startswith("bst_")
    assert terminal.world.url not in path.name


def test_a_wrong_state_at_the_listener_is_refused_and_the_login_waits(
    terminal: Terminal, chromium: Browser, idp_world: tuple[SamlWorld, str]
) -> None:
    _, idp_url = idp_world
    other = Terminal(terminal.cache.parent / "other-cache", terminal.env, terminal.world)
    proc = other.broker("login", "--no-browser", "--timeout", "60")
    url = _read_until(proc, AUTHORIZE).group(1)
    redirect = query_of(url)["redirect_uri"]
    forged = httpx.get(redirect, params={"code": "forged", "state": "not-the-state"})
    assert forged.status_code == 400
    assert proc.poll() is None, "the login must keep waiting for the real answer"
    page = _signed_in_page(chromium, idp_url)
    page.goto(url)
    page.get_by_role("button", name="Sign in the command line").click()
    expect(page.locator("#title")).to_have_text("Signed in")
    page.context.close()
    code, _, err = _finish(proc)
    assert code == 0, err
    assert "ignored a sign-in answer" in err
    terminal.world.secrets.append(other.token())


def test_deny_in_the_browser_fails_the_login(
    terminal: Terminal, chromium: Browser, idp_world: tuple[SamlWorld, str]
) -> None:
    _, idp_url = idp_world
    other = Terminal(terminal.cache.parent / "denied-cache", terminal.env, terminal.world)
    proc = other.broker("login", "--no-browser", "--timeout", "60")
    url = _read_until(proc, AUTHORIZE).group(1)
    page = _signed_in_page(chromium, idp_url)
    page.goto(url)
    page.get_by_role("button", name="Deny").click()
    expect(page.locator("#title")).to_have_text("Sign-in denied")
    page.context.close()
    code, _, err = _finish(proc)
    assert code == 1
    assert "access_denied" in err
    assert not (other.cache / "sessions").exists() or not list((other.cache / "sessions").iterdir())


def test_device_login_approved_in_the_browser(
    terminal: Terminal, chromium: Browser, idp_world: tuple[SamlWorld, str]
) -> None:
    _, idp_url = idp_world
    other = Terminal(terminal.cache.parent / "device-cache", terminal.env, terminal.world)
    proc = other.broker("login", "--device", "--timeout", "60")
    complete = _read_until(proc, re.compile(r"\(or open (http://\S+/device\?user_code=\S+)\)"))
    page = _signed_in_page(chromium, idp_url)
    # The broker names itself by server.base_url; the test serves it on another port.
    base_url = terminal.world.app.state.runtime.config.server.base_url
    page.goto(complete.group(1).replace(base_url, terminal.world.url, 1))
    user_code = query_of(complete.group(1))["user_code"]
    expect(page.locator("#user-code")).to_have_text(user_code)
    screenshot(page, "cli-device")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#done")).to_have_text("Command line signed in")
    page.context.close()
    code, _, err = _finish(proc, timeout=40)
    assert code == 0, err
    terminal.world.secrets.append(other.token())


def test_configure_then_the_aws_cli_and_botocore_use_the_profiles(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = terminal.world
    config = Path(terminal.env["AWS_CONFIG_FILE"])
    mine = "[profile admin]\nregion = us-east-2\n# mine, keep it\n"
    config.write_text(mine)
    dry = terminal.broker("configure", "--region", "eu-west-1", "--dry-run")
    code, out, err = _finish(dry)
    assert code == 0, err
    assert out.startswith("---")
    assert "+[profile deployer]" in out
    assert config.read_text() == mine

    code, out, err = _finish(terminal.broker("configure", "--region", "eu-west-1"))
    assert code == 0, err
    assert "skipped the profile admin" in err
    text = config.read_text()
    assert text.startswith(mine)
    assert "[profile deployer]\ncredential_process = /" in text  # the absolute path: not on PATH
    code, _, _ = _finish(terminal.broker("configure", "--region", "eu-west-1"))
    assert config.read_text() == text  # idempotent

    calls = len(world.standin.calls)
    aws = str(Path(sys.executable).with_name("aws"))  # the AWS CLI from the test extras
    done = subprocess.run(
        [
            aws,
            "sts",
            "get-caller-identity",
            "--profile",
            "deployer",
            "--endpoint-url",
            world.standin_url,
            "--output",
            "json",
        ],
        env=terminal.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"arn:aws:sts::111122223333:assumed-role/deployer/' in done.stdout
    assert len(world.standin.calls) == calls + 2  # AssumeRoleWithSAML, then GetCallerIdentity

    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("PATH", terminal.env["PATH"])
    session = botocore.session.Session(profile="reader")
    creds = session.get_credentials()
    assert creds is not None
    frozen = creds.get_frozen_credentials()
    assert frozen.secret_key
    assert frozen.token
    world.secrets += [frozen.secret_key, frozen.token]
    sts = boto3.Session(botocore_session=session).client(
        "sts", region_name="eu-west-1", endpoint_url=world.standin_url
    )
    assert sts.get_caller_identity()["Arn"].startswith(
        "arn:aws:sts::444455556666:assumed-role/reader/"
    )


def test_console_prints_a_url_the_federation_endpoint_takes(terminal: Terminal) -> None:
    code, out, err = _finish(
        terminal.broker(
            "console",
            "--role",
            "admin",
            "--destination",
            "s3",
            "--region",
            "eu-west-1",
            "--no-browser",
        )
    )
    assert code == 0, err
    url = out.strip()
    assert url.startswith(terminal.world.standin_url + "/federation?Action=login")
    landed = terminal.world.follow_to_console(url)
    assert landed.status_code == 200
    assert "assumed-role/admin/" in landed.text


def test_after_logout_nothing_reaches_sts(terminal: Terminal) -> None:
    world = terminal.world
    token = terminal.token()
    code, _, err = _finish(terminal.broker("logout"))
    assert code == 0, err
    assert not list((terminal.cache / "sessions").iterdir())
    calls = len(world.standin.calls)
    revoked = httpx.post(
        world.url + "/cli/credentials",
        json={"role": "deployer"},
        headers={"authorization": f"Bearer {token}", "accept": "application/json"},
    )
    assert (revoked.status_code, revoked.json()["code"]) == (401, "SessionEnded")
    code, out, err = _finish(
        terminal.broker("credential-process", "--role", "deployer", "--no-cache")
    )
    assert code == 1
    assert out == ""
    assert err == (
        f"broker: your session at {world.url} has ended; run: broker login --url {world.url}\n"
    )
    assert len(world.standin.calls) == calls


@pytest.mark.parametrize("width", [390, 1280])
def test_the_sign_in_pages_fit_and_pass_axe(
    chromium: Browser, idp_world: tuple[SamlWorld, str], width: int
) -> None:
    world, idp_url = idp_world
    assert AXE.is_file(), "scripts/setup --test installs axe-core in tests/peers/axe"
    page = _signed_in_page(chromium, idp_url)
    page.set_viewport_size({"width": width, "height": 844})
    found: list[str] = []
    try:
        page.goto(world.url + "/cli/authorize?" + urlencode(Pkce().params()))
        expect(page.locator("#authorize")).to_be_visible()
        found += findings(page, f"pages-{width}-cli-authorize")

        page.goto(world.url + "/device")
        expect(page.locator("#enter")).to_be_visible()
        found += findings(page, f"pages-{width}-device-entry")

        page.get_by_label("Code").fill("BCDF-GHJK")
        page.get_by_role("button", name="Continue").click()
        expect(page.locator("#wrong")).to_be_visible()
        found += findings(page, f"pages-{width}-device-wrong")

        grant = httpx.post(world.url + "/cli/device", data={"client_id": CLIENT_ID}).json()
        world.secrets.append(grant["device_code"])
        page.get_by_label("Code").fill(grant["user_code"])
        page.get_by_role("button", name="Continue").click()
        expect(page.locator("#approve")).to_be_visible()
        found += findings(page, f"pages-{width}-device-approve")

        page.get_by_role("button", name="Deny").click()
        expect(page.locator("#done")).to_have_text("Sign-in denied")
        found += findings(page, f"pages-{width}-device-done")
    finally:
        page.context.close()
    assert not found, "\n".join(found)
