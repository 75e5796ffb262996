"""docs/rules.md's cookbook, tested: its rules are the cookbook config's, its policies are the
command's output, and each issuer's documented token gets exactly the documented roles."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm

from broker.config import OidcIdp, load_config
from broker.mapping import map_roles
from broker.oidc.jwks import JwksCache
from broker.oidc.verify import OidcVerifier
from tests.docs.cookbook import CONFIG, RULES_MD, blocks, trust_policy_output

pytestmark = pytest.mark.unit

TEXT = RULES_MD.read_text(encoding="utf-8")
RAW_CONFIG = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
COOKBOOK = load_config(CONFIG)
DELETE = object()
DEPLOY_WORKFLOW = "octo-org/octo-automation/.github/workflows/deploy.yml@refs/heads/main"
OTHER_PROJECT = "0c5d8e2f-6a3b-4d71-9e8f-1a2b3c4d5e6f"


@dataclass(frozen=True)
class Case:
    idp: str
    name: str
    roles: frozenset[str]
    # Changes to the documented claims: a top-level key, or a JSON Pointer for nested ones.
    change: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.idp}-{self.name}"


def case(idp: str, name: str, roles: set[str], **change: Any) -> Case:
    return Case(idp, name, frozenset(roles), change)


CASES = [
    case("github", "documented", {"github-deploy-prod"}),
    Case(
        "github",
        "reusable-workflow-from-another-repo",
        frozenset({"github-deploy-staging"}),
        {
            "sub": "repo:octo-org/other-repo:ref:refs/heads/main",
            "repository": "octo-org/other-repo",
            "environment": DELETE,
            "job_workflow_ref": DEPLOY_WORKFLOW,
        },
    ),
    Case(
        "github",
        "pull-request-calling-the-deploy-workflow",
        frozenset(),
        {
            "sub": "repo:octo-org/octo-repo:pull_request",
            "event_name": "pull_request",
            "ref": "refs/pull/42/merge",
            "head_ref": "feature",
            "base_ref": "main",
            "environment": DELETE,
            "job_workflow_ref": DEPLOY_WORKFLOW,
        },
    ),
    Case(
        "github",
        "deploy-workflow-under-another-owner",
        frozenset(),
        {
            "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
            "repository_owner_id": "66",
            "environment": DELETE,
            "job_workflow_ref": DEPLOY_WORKFLOW,
        },
    ),
    Case(
        "github",
        "dev-environment",
        frozenset(),
        {"sub": "repo:octo-org/octo-repo:environment:dev", "environment": "dev"},
    ),
    case("eks", "documented", {"eks-reports"}),
    Case(
        "eks",
        "other-service-account",
        frozenset(),
        {
            "sub": "system:serviceaccount:reporting:default",
            "/kubernetes.io/serviceaccount/name": "default",
        },
    ),
    Case(
        "eks",
        "ops-namespace",
        frozenset({"eks-ops"}),
        {
            "sub": "system:serviceaccount:ops:runner",
            "/kubernetes.io/namespace": "ops",
            "/kubernetes.io/serviceaccount/name": "runner",
        },
    ),
    Case(
        "eks",
        "other-namespace",
        frozenset(),
        {"sub": "system:serviceaccount:default:exporter", "/kubernetes.io/namespace": "default"},
    ),
    case("gitlab", "documented-unprotected-branch", set()),
    Case(
        "gitlab",
        "protected-main",
        frozenset({"gitlab-deploy"}),
        {
            "sub": "project_path:mygroup/myproject:ref_type:branch:ref:main",
            "ref": "main",
            "ref_path": "refs/heads/main",
            "ref_protected": "true",
        },
    ),
    Case(
        "gitlab",
        "another-projects-protected-branch",
        frozenset(),
        {
            "sub": "project_path:forker/myproject:ref_type:branch:ref:main",
            "project_path": "forker/myproject",
            "ref": "main",
            "ref_protected": "true",
        },
    ),
    case("entra", "documented-group-member", {"entra-admin"}),
    case("entra", "not-in-the-group", set(), groups=["f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9"]),
    Case(
        "entra",
        "groups-overage",
        frozenset(),
        {
            "groups": DELETE,
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {
                "src1": {
                    "endpoint": "https://graph.microsoft.com/v1.0/users/00000000-0000-0000-66f3-3332eca7ea81/getMemberObjects"
                }
            },
        },
    ),
    case("google", "documented", {"google-readonly"}),
    case("google", "boolean-email-verified", {"google-readonly"}, email_verified=True),
    case("google", "consumer-account", set(), hd=DELETE, email="jsmith@gmail.com"),
    case("google", "unverified-email", set(), email_verified=False),
    case("circleci", "documented", {"circleci-deploy"}),
    Case("circleci", "ssh-rerun", frozenset(), {"oidc.circleci.com/ssh-rerun": True}),
    Case(
        "circleci",
        "another-project",
        frozenset(),
        {
            "sub": f"org/3ce1d9f5-7a1b-4f0e-9f52-1c6d8d0b2a41/project/{OTHER_PROJECT}/user/5e6f7a8b-1c2d-4e3f-9a0b-c1d2e3f4a5b6",
            "oidc.circleci.com/project-id": OTHER_PROJECT,
        },
    ),
    Case("circleci", "feature-branch", frozenset(), {"oidc.circleci.com/vcs-ref": "refs/heads/x"}),
    case("okta", "documented-admin", {"okta-admin"}),
    case("okta", "not-an-admin", set(), groups=["Everyone", "IT"]),
]


def documented(tag: str, idp: str) -> dict[str, Any]:
    value = json.loads(blocks(TEXT, tag)[idp].body)
    assert isinstance(value, dict)
    return value


def apply(claims: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(claims))
    for path, value in change.items():
        *parents, last = path.split("/")[1:] if path.startswith("/") else [path]
        node = out
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return out


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(key: rsa.RSAPrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def verifier(key: rsa.RSAPrivateKey) -> AsyncIterator[OidcVerifier]:
    """The cookbook's IdPs, each serving its discovery and its JWKS (the documented kid)."""
    idps = {n: i for n, i in COOKBOOK.identity_providers.items() if isinstance(i, OidcIdp)}
    jwk = dict(RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), use="sig", alg="RS256")

    def serve(request: httpx.Request) -> httpx.Response:
        for name, idp in idps.items():
            base = idp.issuer.rstrip("/")
            if str(request.url) == base + "/.well-known/openid-configuration":
                return httpx.Response(200, json={"issuer": idp.issuer, "jwks_uri": base + "/jwks"})
            if str(request.url) == base + "/jwks":
                kid = documented("header", name)["kid"]
                return httpx.Response(200, json={"keys": [dict(jwk, kid=kid)]})
        return httpx.Response(404)

    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as http:
        yield OidcVerifier(idps, {n: JwksCache(i, http) for n, i in idps.items()})


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=attrgetter("id"))
async def test_documented_token_gets_exactly_the_documented_roles(
    case: Case, key: rsa.RSAPrivateKey, verifier: OidcVerifier
) -> None:
    claims = apply(documented("claims", case.idp), case.change)
    token = sign(key, documented("header", case.idp), claims)
    identity = await verifier.verify(token, now=claims["iat"] + 1)
    assert identity.idp == case.idp
    decision = map_roles(identity, COOKBOOK)
    assert {g.name for g in decision.grants} == case.roles, [t.reason for t in decision.trace]


def test_every_issuer_has_a_granted_and_a_refused_case() -> None:
    for idp in COOKBOOK.identity_providers:
        outcomes = {bool(c.roles) for c in CASES if c.idp == idp}
        assert outcomes == {True, False}, idp


def test_the_page_shows_exactly_the_cookbook_rules() -> None:
    shown = blocks(TEXT, "rules")
    assert set(shown) == {r["idp"] for r in RAW_CONFIG["rules"]}
    for idp, block in shown.items():
        assert yaml.safe_load(block.body) == [r for r in RAW_CONFIG["rules"] if r["idp"] == idp]


def test_every_issuer_has_its_documented_token() -> None:
    assert set(blocks(TEXT, "header")) == set(COOKBOOK.identity_providers)
    assert set(blocks(TEXT, "claims")) == set(COOKBOOK.identity_providers)


@pytest.mark.parametrize("role", sorted(COOKBOOK.roles))
def test_printed_trust_policy_is_the_commands_output(role: str) -> None:
    printed = blocks(TEXT, "policy")
    assert role in printed, f"docs/rules.md shows no policy for {role}"
    assert json.loads(printed[role].body) == json.loads(trust_policy_output(role)), (
        "the trust-policy command's output changed: run `.venv/bin/python -m tests.docs.cookbook`"
    )
