"""`broker demo` as a newcomer runs it: one command, a real browser, the printed curl line."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fakes.browser import screenshot
from tests.fakes.servers import free_port, running, wait_for_output

pytestmark = pytest.mark.browser
OPEN = re.compile(r"^\s*Open (http://127\.0\.0\.1:\d+/)\s*$", re.MULTILINE)
CURL = re.compile(r"^\s*(curl .+)$", re.MULTILINE)
# Step 3 of the banner: the command line's lines, as printed.
EXPORT = re.compile(r"^\s*export AWS_CONFIG_FILE=(\S+)", re.MULTILINE)
LOGIN = re.compile(r"^\s*(\S+ login --url \S+)$", re.MULTILINE)
CONFIGURE = re.compile(r"^\s*(\S+ configure --url .+)$", re.MULTILINE)
AWS = re.compile(r"^\s*aws (sts get-caller-identity .+)$", re.MULTILINE)
AUTHORIZE = re.compile(r"^\s+(http://\S+/cli/authorize\?\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class Demo:
    broker_url: str
    open_url: str
    curl: str
    output: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`python -m broker demo --port <free>`, its output in a file (nothing can block on a pipe)."""
    port = free_port()
    output = tmp_path_factory.mktemp("demo") / "output.txt"
    command = [sys.executable, "-m", "broker", "demo", "--port", str(port)]
    with running(command, output=output) as proc:
        text = wait_for_output(
            output, "Press Ctrl-C to stop.", timeout=60, what="broker demo", alive=proc
        )
        opened, curl = OPEN.search(text), CURL.search(text)
        assert opened is not None, text
        assert curl is not None, text
        yield Demo(f"http://127.0.0.1:{port}", opened.group(1), curl.group(1), output)
    assert "broker demo: stopped" in output.read_text()


def test_sign_in_pick_a_role_land_in_the_console(page: Page, demo: Demo) -> None:
    page.goto(demo.open_url)
    expect(page.locator("#banner")).to_have_text("Demo identity provider — not a real IdP")
    screenshot(page, "demo-1-idp")

    page.locator("#user-alice").click()
    page.wait_for_url(demo.broker_url + "/")
    accounts = page.locator("section.account h2")
    expect(accounts).to_have_count(2)
    expect(accounts.nth(0)).to_contain_text("Production")
    expect(accounts.nth(1)).to_contain_text("Staging")
    expect(page.locator("#subject")).to_have_text("alice@example.com")
    screenshot(page, "demo-2-picker")

    production = page.locator("section.account", has_text="Production")
    production.get_by_role("button", name=re.compile("^Open the console as prod-admin")).click()
    expect(page.locator("#caller-arn")).to_contain_text(
        "arn:aws:sts::111111111111:assumed-role/Admin/alice@example.com"
    )
    expect(page.locator("#banner")).to_contain_text("not AWS")
    screenshot(page, "demo-3-console")


def test_broker_first_goes_through_the_idp_and_back(page: Page, demo: Demo) -> None:
    """SP-initiated: the broker's address sends bob to the IdP with an AuthnRequest; his one
    role opens the console directly."""
    page.goto(demo.broker_url + "/")
    expect(page.locator("#banner")).to_have_text("Demo identity provider — not a real IdP")
    assert "/sso?SAMLRequest=" in page.url
    page.locator("#user-bob").click()
    expect(page.locator("#caller-arn")).to_contain_text(
        "arn:aws:sts::222222222222:assumed-role/Developer/bob@example.com"
    )
    screenshot(page, "demo-4-sp-initiated")


def test_printed_curl_line_returns_credentials(demo: Demo) -> None:
    done = subprocess.run(
        ["bash", "-c", demo.curl], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    creds = body["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert all(creds[k] for k in ("SecretAccessKey", "SessionToken", "Expiration"))
    assert body["AssumedRoleUser"]["Arn"].startswith(
        "arn:aws:sts::111111111111:assumed-role/CiDeploy/"
    )


def test_printed_command_line_steps_sign_the_terminal_in(
    page: Page, demo: Demo, tmp_path: Path
) -> None:
    """Step 3 as printed (plus --no-browser, since the test's browser is Playwright's): the
    terminal signs in through alice's browser sign-in, configure writes her profiles, and the
    AWS CLI uses one."""
    text = demo.output.read_text()
    found = [r.search(text) for r in (EXPORT, LOGIN, CONFIGURE, AWS)]
    assert all(found), text
    export, login, configure, aws = (m.group(1) for m in found if m is not None)
    env = {**os.environ, "AWS_CONFIG_FILE": export, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("AWS_PROFILE", None)
    proc = subprocess.Popen(
        ["bash", "-c", login + " --no-browser --timeout 60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        said = ""
        while (url := AUTHORIZE.search(said)) is None and proc.poll() is None:
            said += proc.stderr.readline()
        assert url is not None, said
        page.goto(url.group(1))
        page.locator("#user-alice").click()
        page.get_by_role("button", name="Sign in the command line").click()
        expect(page.locator("#title")).to_have_text("Signed in")
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()

    done = subprocess.run(
        ["bash", "-c", configure], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "[profile prod-admin]" in Path(export).read_text()

    aws_cli = Path(sys.executable).with_name("aws")
    command = [str(aws_cli), *shlex.split(aws.replace("<role>", "prod-admin")), "--output", "json"]
    called = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert called.returncode == 0, called.stderr
    arn = json.loads(called.stdout)["Arn"]
    assert arn == "arn:aws:sts::111111111111:assumed-role/Admin/alice@example.com"
