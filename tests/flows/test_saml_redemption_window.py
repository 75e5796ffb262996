"""Pass-through SAML meets STS's redemption window: an assertion is good for 5 minutes after its
IssueInstant (here 1 second), then STS refuses it and the broker says so."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker_demo.aws import AwsStandIn
from tests.fakes.saml_world import READER, SamlWorld, saml_world

pytestmark = pytest.mark.peers


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SamlWorld]:
    with saml_world(tmp_path, standin=AwsStandIn(saml_redemption_seconds=1)) as w:
        yield w


def test_a_session_outliving_the_window_gets_sts_token_expired(world: SamlWorld) -> None:
    with world.client() as client:
        world.sign_in(client)
        csrf = world.csrf(client)
        first = client.post("/console", data={"csrf": csrf, "role": "deployer"})
        assert first.status_code == 303, first.text
        time.sleep(1.5)
        late = client.post(
            "/console",
            data={"csrf": csrf, "role": READER},
            headers={"accept": "application/json"},
        )
    assert late.status_code == 401, late.text
    problem = late.json()
    assert (problem["code"], problem["sts_code"]) == ("StsTokenExpired", "ExpiredTokenException")
    assert problem["sts_message"] == "Token must be redeemed within 1 second of issuance"
    assert [c.outcome for c in world.sts_calls()] == ["ok", "ExpiredTokenException"]
    assert len(world.standin.issued_access_key_ids) == 1
