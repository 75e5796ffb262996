"""IdP-initiated sign-in with a "default relay state" that is a console URL (what IdPs send to
AWS's own SAML endpoint): it becomes the destination; anything else is ignored, never followed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from broker.saml.routes import relay_destination
from tests.fakes.saml_world import SamlWorld, saml_world

pytestmark = pytest.mark.peers
S3 = "https://console.aws.amazon.com/s3/home?region=eu-west-1"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlWorld]:
    with saml_world(tmp_path_factory.mktemp("relay")) as w:
        yield w


@pytest.mark.parametrize(
    ("relay", "expected"),
    [
        (
            S3,
            "/?destination="
            + "https%3A%2F%2Fconsole.aws.amazon.com%2Fs3%2Fhome%3Fregion%3Deu-west-1",
        ),
        (
            "https://eu-west-1.console.aws.amazon.com/ec2/home",
            "/?destination=https%3A%2F%2Feu-west-1.console.aws.amazon.com%2Fec2%2Fhome",
        ),
        ("https://evil.example/s3", "/"),
        ("http://console.aws.amazon.com/s3/home", "/"),
        ("https://console.aws.amazon.com.evil.example/", "/"),
        ("/admin", "/"),
        ("s3", "/"),
        ("", "/"),
        (None, "/"),
        ("https://console.amazonaws.cn/s3/home", "/"),  # another partition's console
    ],
)
def test_relay_destination(relay: str | None, expected: str) -> None:
    assert relay_destination(relay, "aws") == expected


def test_an_idp_initiated_console_relay_state_preselects_the_destination(world: SamlWorld) -> None:
    with world.client() as browser:
        r = browser.post("/saml/acs", data={"SAMLResponse": world.response(), "RelayState": S3})
        assert r.status_code == 303, r.text
        location = r.headers["location"]
        assert parse_qs(urlsplit(location).query) == {"destination": [S3]}
        page = browser.get(location, headers={"accept": "text/html"})
    assert page.status_code == 200
    assert 'id="deep-link"' in page.text


def test_a_foreign_relay_state_is_ignored(world: SamlWorld, tmp_path: Path) -> None:
    with world.client() as browser:
        r = browser.post(
            "/saml/acs",
            data={"SAMLResponse": world.response(), "RelayState": "https://evil.example/"},
        )
    assert r.status_code == 303
    assert r.headers["location"] == "/"
