"""AssumeRoleWithWebIdentity refuses what AWS refuses: unknown roles, trust, session tags, SourceIdentity, limits."""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from broker_demo.aws import AwsStandIn, serve, serve_asgi
from tests.fakes.jwt_issuer import CLIENT_ID, Issuer, issuer_app
from tests.fakes.servers import free_port, read_text, running, wait_for_http
from tests.fakes.trust import (
    SET_SOURCE_IDENTITY,
    TAG_SESSION,
    WEB_IDENTITY,
    policy,
    statement,
    web_identity_trust,
)

pytestmark = pytest.mark.peers

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deploy"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/other"
TAGS = "https://aws.amazon.com/tags"
SOURCE = "https://aws.amazon.com/source_identity"
DENIED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    peer = Issuer(
        keys={"rsa1": rsa.generate_private_key(public_exponent=65537, key_size=2048)},
        published=["rsa1"],
    )
    with serve_asgi(issuer_app(peer)) as url:
        peer.url = url
        yield peer


@dataclass
class Aws:
    standin: AwsStandIn
    url: str
    provider: str  # the issuer's provider ARN
    key: str = field(init=False)  # its condition-key prefix

    def __post_init__(self) -> None:
        self.key = self.provider.partition(":oidc-provider/")[2]

    def post(self, token: str, role: str = ROLE, **params: str) -> httpx.Response:
        data = {
            "Version": "2011-06-15",
            "Action": "AssumeRoleWithWebIdentity",
            "RoleArn": role,
            "RoleSessionName": "ci",
            "WebIdentityToken": token,
        }
        return httpx.post(f"{self.url}/", data=data | params)


@pytest.fixture
def aws(issuer: Issuer) -> Iterator[Aws]:
    standin = AwsStandIn()
    provider = standin.register_oidc_provider(issuer.url, [CLIENT_ID, "other-client"], ACCOUNT)
    trust = web_identity_trust(
        provider, [CLIENT_ID], extra_actions=(TAG_SESSION, SET_SOURCE_IDENTITY)
    )
    standin.register_role(ROLE, trust)
    with serve(standin) as url:
        yield Aws(standin, url, provider)


def fault(response: httpx.Response) -> tuple[int, str, str]:
    root = etree.fromstring(response.content)
    code = root.findtext(f"{{{NS}}}Error/{{{NS}}}Code") or ""
    return response.status_code, code, root.findtext(f"{{{NS}}}Error/{{{NS}}}Message") or ""


def tags(count: int, size: int = 8, transitive: list[str] | None = None) -> dict[str, Any]:
    principal = {f"k{i}": [secrets.token_hex(size // 2)] for i in range(count)}
    return {TAGS: {"principal_tags": principal, "transitive_tag_keys": transitive or []}}


@dataclass(frozen=True)
class Case:
    name: str
    claims: dict[str, Any]
    code: str
    message: str = ""
    role: str = ROLE
    params: dict[str, str] = field(default_factory=dict)
    trust: Callable[[Aws], dict[str, Any]] | None = None


def _only(*actions: str, **condition: Any) -> Callable[[Aws], dict[str, Any]]:
    return lambda a: policy(
        statement(
            a.provider,
            [WEB_IDENTITY, *actions],
            {op: {f"{a.key}:{k}": v for k, v in keys.items()} for op, keys in condition.items()},
        )
    )


CASES = [
    Case("unregistered-role", {}, "AccessDenied", DENIED, role=OTHER_ROLE),
    Case(
        "trusts-another-provider",
        {},
        "AccessDenied",
        DENIED,
        trust=lambda a: web_identity_trust(f"arn:aws:iam::{ACCOUNT}:oidc-provider/x.example", [CLIENT_ID]),
    ),
    Case("aud-not-in-trust", {"aud": "other-client"}, "AccessDenied", DENIED),
    Case("sub-not-like", {"sub": "repo:evil/app:ref:refs/heads/main"}, "AccessDenied", DENIED, trust=_only(StringLike={"sub": "repo:acme/*"})),
    Case("amr-without-mfa", {"amr": ["pwd"]}, "AccessDenied", DENIED, trust=_only(**{"ForAnyValue:StringEquals": {"amr": "mfa"}})),
    Case("no-amr-at-all", {}, "AccessDenied", DENIED, trust=_only(**{"ForAnyValue:StringEquals": {"amr": "mfa"}})),
    Case("tags-without-sts-tag-session", tags(1), "AccessDenied", DENIED, trust=_only(SET_SOURCE_IDENTITY)),
    Case("source-identity-without-permission", {SOURCE: "alice"}, "AccessDenied", DENIED, trust=_only(TAG_SESSION)),
    Case("51-tags", tags(51), "ValidationError", "at most 50"),
    Case("transitive-key-not-a-tag", tags(1, transitive=["nope"]), "ValidationError", "transitive"),
    Case("tags-claim-not-an-object", {TAGS: ["team"]}, "ValidationError", "malformed"),
    Case("tag-value-not-a-string", {TAGS: {"principal_tags": {"team": [7]}}}, "ValidationError", "malformed"),
    Case("packed-size", tags(50, 250), "PackedPolicyTooLarge", "allotted space"),
    Case("source-identity-aws-prefix", {SOURCE: "aws:admin"}, "InvalidIdentityToken", "Source Identity"),
    Case("source-identity-not-a-string", {SOURCE: ["alice"]}, "InvalidIdentityToken", "source_identity"),
    Case("duration-over-max-session", {}, "ValidationError", "MaxSessionDuration", params={"DurationSeconds": "3601"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=attrgetter("name"))
def test_refusals(case: Case, aws: Aws, issuer: Issuer) -> None:
    if case.trust is not None:
        aws.standin.update_trust_policy(ROLE, case.trust(aws))
    status, code, message = fault(aws.post(issuer.token(**case.claims), case.role, **case.params))
    assert code == case.code, message
    assert case.message in message
    assert status == (403 if code == "AccessDenied" else 400)
    assert [c.outcome for c in aws.standin.calls] == [case.code]
    assert not aws.standin.issued_access_key_ids


def test_tags_source_identity_and_amr_when_trusted(aws: Aws, issuer: Issuer) -> None:
    aws.standin.update_trust_policy(
        ROLE,
        policy(
            statement(
                aws.provider,
                [WEB_IDENTITY, SET_SOURCE_IDENTITY],
                {"ForAnyValue:StringEquals": {f"{aws.key}:amr": "mfa"}},
            ),
            statement(
                aws.provider,
                [TAG_SESSION],
                {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "project"]}},
            ),
        ),
    )
    claims = tags(0) | {SOURCE: "alice", "amr": ["pwd", "mfa"]}
    claims[TAGS]["principal_tags"] = {"team": ["payments"], "project": ["atlas"]}
    claims[TAGS]["transitive_tag_keys"] = ["team"]
    policy_text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
    )
    response = aws.post(issuer.token(**claims), Policy=policy_text)
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    assert root.findtext(f".//{{{NS}}}SourceIdentity") == "alice"
    assert 1 <= int(root.findtext(f".//{{{NS}}}PackedPolicySize") or 0) <= 100
    claims[TAGS]["principal_tags"]["owner"] = ["bob"]
    assert fault(aws.post(issuer.token(**claims)))[1] == "AccessDenied"  # ForAllValues


def test_plain_tokens_pass_without_tag_or_source_permissions(aws: Aws, issuer: Issuer) -> None:
    aws.standin.update_trust_policy(ROLE, web_identity_trust(aws.provider, [CLIENT_ID]))
    response = aws.post(issuer.token())
    assert response.status_code == 200, response.text
    assert b"PackedPolicySize" not in response.content


def test_command_line_registers_providers_and_roles(issuer: Issuer, tmp_path: Path) -> None:
    port = free_port()
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer.url.removeprefix('http://')}"
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(web_identity_trust(provider, [CLIENT_ID])))
    command = [
        *(sys.executable, "-m", "broker_demo.aws", "--port", str(port)),
        *("--oidc", f"{issuer.url}={CLIENT_ID}", "--role", f"{ROLE}={trust},7200"),
    ]
    output = tmp_path / "standin.txt"
    with running(command, output=output) as process:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(
            f"{url}/_standin/calls",
            timeout=20,
            what="the stand-in",
            alive=process,
            output=read_text(output),
        )
        aws = Aws(AwsStandIn(), url, provider)
        assert aws.post(issuer.token(), DurationSeconds="7200").status_code == 200
        assert fault(aws.post(issuer.token(), OTHER_ROLE))[1] == "AccessDenied"
    assert f"role {ROLE}" in output.read_text()
