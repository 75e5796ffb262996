"""One OIDC world: a broker config wired to oidc-provider for tokens and the STS stand-in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.config import Config, parse_config
from broker_demo.aws import AwsStandIn
from tests.fakes.logs import LogCapture, read_audit
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
    """A running broker and what the flow tests look at: tokens minted, logs, audit events."""

    url: str
    standin: AwsStandIn
    standin_url: str
    provider: OidcProviderPeer
    audit_path: Path
    logs: LogCapture
    secrets: list[str] = field(default_factory=list)

    def audit(self) -> list[dict[str, Any]]:
        return read_audit(self.audit_path)

    def token(self, claims: dict[str, Any], *, alg: str | None = None) -> str:
        client = self.provider.register_client(claims)
        token = self.provider.mint(client, alg=alg)
        self.secrets.append(token)
        return token
