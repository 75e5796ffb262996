"""The OIDC flows' broker, wired to real peers: oidc-provider for tokens, the STS stand-in for AWS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from broker.app import create_app
from broker_demo.aws import AwsStandIn, serve
from tests.fakes.logs import LogCapture, assert_nothing_leaked, capturing
from tests.fakes.oidc_world import ACCOUNT, AUDIENCES, OTHER_ACCOUNT, Flow, flow_config
from tests.fakes.servers import serve_app
from tests.fakes.trust import register_configured_roles
from tests.peers.oidc_provider import OidcProviderPeer


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
    config = flow_config(oidc_provider.issuer, aws_url, audit_path)
    # The flows' rules test claims IAM cannot see (team, groups): trust any subject the
    # issuer signs for our audience, as `broker setup trust-policy --allow-any-subject` prints.
    register_configured_roles(aws, config)
    with capturing(LogCapture()) as logs:
        app = create_app(config)
        with serve_app(app) as url:
            f = Flow(url, aws, aws_url, oidc_provider, audit_path, logs)
            yield f
    assert_nothing_leaked(f.secrets, logs, audit_path)


@pytest.fixture(autouse=True)
def _fresh_standin(request: pytest.FixtureRequest) -> None:
    if "flow" in request.fixturenames:
        aws, _ = request.getfixturevalue("standin")
        aws.reset()
