"""A broker wired to real peers: oidc-provider for tokens, the STS stand-in for AWS."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from broker.app import create_app
from broker.config import Config, parse_config
from broker_demo.aws import AwsStandIn, serve
from tests.flows.harness import LogCapture, serve_app
from tests.peers.oidc_provider import OidcProviderPeer

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
READER = f"arn:aws:iam::{OTHER_ACCOUNT}:role/reader"
AUDIENCES = ["sts.amazonaws.com"]


def flow_config(issuer: str, sts_url: str, audit_path: Path, **idp: Any) -> Config:
    return parse_config(
        {
            "server": {"base_url": "http://127.0.0.1:8080"},
            "aws": {
                "sts_endpoint": sts_url + "/",
                "federation_endpoint": sts_url + "/federation",
                "sts_max_attempts": 3,
                "sts_retry_base_seconds": 0.01,
            },
            "audit": {"path": str(audit_path)},
            "identity_providers": {
                "test": {
                    "type": "oidc",
                    "issuer": issuer,
                    "audiences": AUDIENCES,
                    "algorithms": ["RS256", "ES256"],
                    "jwks_min_refresh_seconds": 1,
                    # oidc-provider mints RFC 9068 JWT access tokens (typ at+jwt).
                    "token_types": ["JWT", "at+jwt"],
                    **idp,
                }
            },
            "accounts": {ACCOUNT: {"name": "Production"}, OTHER_ACCOUNT: {"name": "Analytics"}},
            "roles": {
                "deployer": {"arn": DEPLOYER, "max_session_seconds": 3600},
                "reader": {"arn": READER, "max_session_seconds": 7200},
            },
            "rules": [
                {
                    "name": "deployers",
                    "when": {"claim": "team", "equals": "deploy"},
                    "grant": "deployer",
                },
                {
                    "name": "readers",
                    "when": {"claim": "groups", "contains": "readers"},
                    "grant": "reader",
                },
                {
                    "name": "no-contractors",
                    "when": {"claim": "groups", "contains": "contractors"},
                    "deny": "*",
                },
                {
                    "name": "groups-to-roles",
                    "when": {
                        "claim": "groups",
                        "regex": r"aws-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)",
                    },
                    "grant": [{"arn": "arn:aws:iam::{account}:role/{role}"}],
                },
            ],
        }
    )


@dataclass
class Flow:
    url: str
    standin: AwsStandIn
    standin_url: str
    provider: OidcProviderPeer
    audit_path: Path
    logs: LogCapture
    secrets: list[str] = field(default_factory=list)

    def audit(self) -> list[dict[str, Any]]:
        import json

        text = self.audit_path.read_text() if self.audit_path.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def token(self, claims: dict[str, Any], *, alg: str | None = None) -> str:
        client = self.provider.register_client(claims)
        token = self.provider.mint(client, alg=alg)
        self.secrets.append(token)
        return token


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[AwsStandIn, str]]:
    aws = AwsStandIn()
    with serve(aws) as url:
        yield aws, url


@pytest.fixture(scope="module")
def flow(
    oidc_provider: OidcProviderPeer,
    standin: tuple[AwsStandIn, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Flow]:
    aws, aws_url = standin
    aws.register_oidc_provider(oidc_provider.issuer, AUDIENCES, account_id=ACCOUNT)
    aws.register_oidc_provider(oidc_provider.issuer, AUDIENCES, account_id=OTHER_ACCOUNT)
    audit_path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    capture = LogCapture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    app = create_app(flow_config(oidc_provider.issuer, aws_url, audit_path))
    f = Flow("", aws, aws_url, oidc_provider, audit_path, capture)
    try:
        with serve_app(app) as url:
            f.url = url
            yield f
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    # The property that matters most: no secret in any log line or audit event.
    text = "\n".join(capture.lines) + (audit_path.read_text() if audit_path.exists() else "")
    assert f.secrets, "the flow tests should have produced secrets to look for"
    leaked = [s for s in f.secrets if s in text]
    assert not leaked, f"{len(leaked)} secret(s) reached a log line or audit event"


@pytest.fixture(autouse=True)
def _fresh_standin(request: pytest.FixtureRequest) -> None:
    if "flow" in request.fixturenames:
        aws, _ = request.getfixturevalue("standin")
        aws.reset()
