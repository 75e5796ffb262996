"""The local AWS stand-in, driven by real botocore and httpx over real sockets."""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import httpx
import jwt
import lxml.html
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from broker_demo.aws import AwsStandIn, serve, serve_asgi
from tests.fakes.jwt_issuer import CLIENT_ID, Issuer, issuer_app
from tests.fakes.servers import free_port, read_text, running, wait_for_http
from tests.fakes.signed_saml import ACS, SAML, SigningIdp, find, make_idp, saml_response
from tests.fakes.trust import (
    SET_SOURCE_IDENTITY,
    TAG_SESSION,
    policy,
    saml_trust,
    web_identity_trust,
)

pytestmark = pytest.mark.peers

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deploy"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/team/admin"
NO_RETRY = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    peer = Issuer(
        keys={
            "rsa1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec1": ec.generate_private_key(ec.SECP256R1()),
        },
        published=["rsa1", "ec1"],
    )
    with serve_asgi(issuer_app(peer)) as url:
        peer.url = url
        yield peer


SAML_PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp-idp"


def register_roles(aws: AwsStandIn, oidc_provider: str, partition: str = "aws") -> None:
    """ROLE and ADMIN trust the test issuer (any subject, our client id) and the corp-idp SAML
    provider, and let them tag sessions and set a source identity."""
    extra = (TAG_SESSION, SET_SOURCE_IDENTITY)
    saml = saml_trust(SAML_PROVIDER.replace("arn:aws:", f"arn:{partition}:"), extra_actions=extra)
    web = web_identity_trust(oidc_provider, [CLIENT_ID], extra_actions=extra)
    document = policy(*web["Statement"], *saml["Statement"])
    for role in (ROLE, ADMIN):
        aws.register_role(role.replace("arn:aws:", f"arn:{partition}:"), document, 43200)


@pytest.fixture
def standin(issuer: Issuer) -> AwsStandIn:
    aws = AwsStandIn()
    register_roles(aws, aws.register_oidc_provider(issuer.url, ["other-client", CLIENT_ID]))
    return aws


@pytest.fixture
def url(standin: AwsStandIn) -> Iterator[str]:
    with serve(standin) as base:
        yield base


def sts_client(url: str, config: botocore.config.Config = NO_RETRY, **creds: str) -> Any:
    return boto3.client(
        "sts",
        endpoint_url=url,
        region_name="us-east-1",
        config=config,
        aws_access_key_id=creds.get("aws_access_key_id", "x"),
        aws_secret_access_key=creds.get("aws_secret_access_key", "x"),
        aws_session_token=creds.get("aws_session_token"),
    )


def post(url: str, **params: str) -> httpx.Response:
    return httpx.post(f"{url}/", data={"Version": "2011-06-15", **params})


def fault(response: httpx.Response) -> tuple[str, str, str]:
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{NS}}}ErrorResponse"
    assert root.findtext(f"{{{NS}}}RequestId") == response.headers["x-amzn-RequestId"]
    kind, code, message = (
        root.findtext(f"{{{NS}}}Error/{{{NS}}}{field}") for field in ("Type", "Code", "Message")
    )
    assert kind is not None
    assert code is not None
    assert message is not None
    return kind, code, message


def assume(url: str, token: str, role: str = ROLE, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = sts_client(url).assume_role_with_web_identity(
        RoleArn=role, RoleSessionName="ci-run", WebIdentityToken=token, **extra
    )
    return result


# ---------------------------------------------------------------- AssumeRoleWithWebIdentity


def test_web_identity_success_parses_in_botocore(
    standin: AwsStandIn, url: str, issuer: Issuer
) -> None:
    before = datetime.now(UTC)
    token = issuer.token()
    result = assume(url, token, DurationSeconds=1800)
    creds = result["Credentials"]
    assert re.fullmatch(r"ASIA[A-Z0-9]{16}", creds["AccessKeyId"])
    assert len(creds["SecretAccessKey"]) == 40
    assert len(creds["SessionToken"]) > 200
    expected = before + timedelta(seconds=1800)
    assert abs((creds["Expiration"] - expected).total_seconds()) < 5
    assert result["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci-run"
    assert result["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")
    assert result["AssumedRoleUser"]["AssumedRoleId"].endswith(":ci-run")
    assert result["SubjectFromWebIdentityToken"] == "repo:acme/app:ref:refs/heads/main"
    assert result["Audience"] == CLIENT_ID
    host = issuer.url.removeprefix("http://")
    assert result["Provider"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
    [call] = standin.calls
    assert (call.action, call.role_arn, call.session_name, call.duration_seconds, call.outcome) == (
        "AssumeRoleWithWebIdentity",
        ROLE,
        "ci-run",
        1800,
        "ok",
    )
    assert token not in repr(standin.calls)


def test_success_wire_shape(url: str, issuer: Issuer) -> None:
    response = post(
        url,
        Action="AssumeRoleWithWebIdentity",
        RoleArn=ADMIN,
        RoleSessionName="s1",
        WebIdentityToken=issuer.token(kid="ec1", alg="ES256"),
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml"
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{NS}}}AssumeRoleWithWebIdentityResponse"
    result = root.find(f"{{{NS}}}AssumeRoleWithWebIdentityResult")
    assert result is not None
    assert (
        result.findtext(f"{{{NS}}}AssumedRoleUser/{{{NS}}}Arn")
        == f"arn:aws:sts::{ACCOUNT}:assumed-role/admin/s1"
    )
    expiration = result.findtext(f"{{{NS}}}Credentials/{{{NS}}}Expiration")
    assert expiration is not None
    assert expiration.endswith("Z")
    request_id = root.findtext(f"{{{NS}}}ResponseMetadata/{{{NS}}}RequestId")
    assert request_id == response.headers["x-amzn-RequestId"]
    uuid.UUID(request_id)


def test_policy_and_policy_arns_recorded(standin: AwsStandIn, url: str, issuer: Issuer) -> None:
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
    )
    arns = [
        {"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
        {"arn": f"arn:aws:iam::{ACCOUNT}:policy/x"},
    ]
    result = assume(url, issuer.token(), Policy=policy, PolicyArns=arns)
    assert result["PackedPolicySize"] >= 1
    [call] = standin.calls
    assert call.policy == policy
    assert call.policy_arns == (
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        f"arn:aws:iam::{ACCOUNT}:policy/x",
    )


def test_unknown_kid_refetches_jwks(standin: AwsStandIn, url: str, issuer: Issuer) -> None:
    assume(url, issuer.token())
    fetches = issuer.fetches
    issuer.keys["rsa2"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.published.append("rsa2")
    try:
        assume(url, issuer.token(kid="rsa2"))
        assert issuer.fetches == fetches + 1
        assume(url, issuer.token(kid="rsa2"))  # now cached
        assert issuer.fetches == fetches + 1
    finally:
        issuer.published.remove("rsa2")


@dataclass(frozen=True)
class Case:
    name: str
    params: Callable[[Issuer], dict[str, str]]
    code: str
    status: int = 400
    message: str | None = None


def _web(**overrides: Any) -> Callable[[Issuer], dict[str, str]]:
    """Parameters for an AssumeRoleWithWebIdentity request; callables get the issuer."""

    def build(issuer: Issuer) -> dict[str, str]:
        params = {
            "Action": "AssumeRoleWithWebIdentity",
            "RoleArn": ROLE,
            "RoleSessionName": "ci-run",
            "WebIdentityToken": issuer.token(),
        }
        for key, value in overrides.items():
            value = value(issuer) if callable(value) else value
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        return params

    return build


OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
POLICY_ARNS_11 = {
    f"PolicyArns.member.{i}.arn": "arn:aws:iam::aws:policy/ReadOnlyAccess" for i in range(1, 12)
}

PARAMETER_CASES = [
    Case("session-name-too-short", _web(RoleSessionName="a"), "ValidationError"),
    Case("session-name-bad-chars", _web(RoleSessionName="bad name!"), "ValidationError"),
    Case("session-name-non-ascii", _web(RoleSessionName="jörg"), "ValidationError"),
    Case("session-name-too-long", _web(RoleSessionName="x" * 65), "ValidationError"),
    Case("session-name-missing", _web(RoleSessionName=None), "ValidationError"),
    Case("duration-too-short", _web(DurationSeconds="899"), "ValidationError"),
    Case("duration-too-long", _web(DurationSeconds="43201"), "ValidationError"),
    Case("duration-not-a-number", _web(DurationSeconds="1h"), "ValidationError"),
    Case("policy-too-long", _web(Policy='{"Statement":[]}' + " " * 2040), "ValidationError"),
    Case("policy-not-json", _web(Policy="{not json"), "MalformedPolicyDocument"),
    Case("policy-not-an-object", _web(Policy="[1, 2]"), "MalformedPolicyDocument"),
    Case(
        "policy-arn-invalid",
        _web(**{"PolicyArns.member.1.arn": "arn:aws:s3:::bucket/some-key"}),
        "InvalidParameterValue",
    ),
    Case(
        "policy-arn-too-short",
        _web(**{"PolicyArns.member.1.arn": "arn:aws:iam"}),
        "ValidationError",
    ),
    Case("eleven-policy-arns", _web(**POLICY_ARNS_11), "ValidationError"),
    Case(
        "role-arn-is-a-user",
        _web(RoleArn=f"arn:aws:iam::{ACCOUNT}:user/bob"),
        "ValidationError",
        message="Request ARN is invalid",
    ),
    Case("role-arn-too-short", _web(RoleArn="arn:aws:iam::1:role"), "ValidationError"),
    Case("role-arn-missing", _web(RoleArn=None), "ValidationError"),
    Case(
        "role-arn-other-partition",
        _web(RoleArn=f"arn:aws-cn:iam::{ACCOUNT}:role/deploy"),
        "ValidationError",
    ),
    Case("token-too-short", _web(WebIdentityToken="abc"), "ValidationError"),
    Case("token-too-long", _web(WebIdentityToken="a" * 20001), "ValidationError"),
    Case("wrong-version", _web(Version="2010-05-08"), "InvalidAction"),
    Case("unsupported-action", _web(Action="AssumeRole"), "InvalidAction"),
    Case("missing-action", _web(Action=""), "MissingAction"),
]

TOKEN_CASES = [
    Case(
        "unknown-issuer",
        _web(WebIdentityToken=lambda i: i.token(iss="https://idp.unknown.example")),
        "InvalidIdentityToken",
        message="No OpenIDConnect provider found in your account for https://idp.unknown.example",
    ),
    Case(
        "provider-in-another-account",
        _web(RoleArn="arn:aws:iam::444455556666:role/deploy"),
        "InvalidIdentityToken",
        message="No OpenIDConnect provider found in your account",
    ),
    Case(
        "wrong-audience",
        _web(WebIdentityToken=lambda i: i.token(aud="someone-else")),
        "InvalidIdentityToken",
        message="Incorrect token audience",
    ),
    Case(
        "no-audience",
        _web(WebIdentityToken=lambda i: i.token(aud=None)),
        "InvalidIdentityToken",
        message="Incorrect token audience",
    ),
    Case(
        "expired",
        _web(WebIdentityToken=lambda i: i.token(exp=int(time.time()) - 5)),
        "ExpiredTokenException",
    ),
    Case("no-exp", _web(WebIdentityToken=lambda i: i.token(exp=None)), "InvalidIdentityToken"),
    Case("no-sub", _web(WebIdentityToken=lambda i: i.token(sub=None)), "InvalidIdentityToken"),
    Case(
        "not-yet-valid",
        _web(WebIdentityToken=lambda i: i.token(nbf=int(time.time()) + 3600)),
        "InvalidIdentityToken",
    ),
    Case(
        "signed-by-another-key",
        _web(WebIdentityToken=lambda i: i.token(key=OTHER_RSA)),
        "InvalidIdentityToken",
    ),
    Case(
        "unknown-kid",
        _web(WebIdentityToken=lambda i: i.token(kid="nope", key=OTHER_RSA)),
        "InvalidIdentityToken",
    ),
    Case(
        "hs256",
        _web(
            WebIdentityToken=lambda i: i.token(
                alg="HS256", key="a-shared-secret-of-32-bytes-at-least!"
            )
        ),
        "InvalidIdentityToken",
    ),
    Case("alg-none", _web(WebIdentityToken=lambda i: _unsigned(i)), "InvalidIdentityToken"),
    Case(
        "ec-key-with-rs256-header",
        _web(WebIdentityToken=lambda i: _relabelled(i.token(kid="ec1", alg="ES256"), "RS256")),
        "InvalidIdentityToken",
    ),
    Case("not-a-jwt", _web(WebIdentityToken="abcd.efgh.ijkl"), "InvalidIdentityToken"),
]


def _unsigned(issuer: Issuer) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"rsa1"}').rstrip(b"=").decode()
    claims = {"iss": issuer.url, "sub": "x", "aud": CLIENT_ID, "exp": int(time.time()) + 300}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{body}."


def _relabelled(token: str, alg: str) -> str:
    _, body, signature = token.split(".")
    header = (
        base64.urlsafe_b64encode(json.dumps({"alg": alg, "kid": "ec1"}).encode())
        .rstrip(b"=")
        .decode()
    )
    return f"{header}.{body}.{signature}"


@pytest.mark.parametrize("case", PARAMETER_CASES + TOKEN_CASES, ids=attrgetter("name"))
def test_rejections(case: Case, standin: AwsStandIn, url: str, issuer: Issuer) -> None:
    params = case.params(issuer)
    response = httpx.post(f"{url}/", data={"Version": "2011-06-15"} | params)
    kind, code, message = fault(response)
    assert (response.status_code, kind, code) == (case.status, "Sender", case.code)
    if case.message:
        assert case.message in message
    token = params.get("WebIdentityToken", "")
    assert len(token) < 8 or token not in response.text
    [call] = standin.calls
    assert call.outcome == case.code
    assert not standin.issued_access_key_ids, "no credentials may be issued"


def test_validation_errors_are_collected(url: str, issuer: Issuer) -> None:
    response = post(
        url,
        Action="AssumeRoleWithWebIdentity",
        RoleArn=ROLE,
        RoleSessionName="a",
        DurationSeconds="60",
        WebIdentityToken=issuer.token(),
    )
    _, code, message = fault(response)
    assert code == "ValidationError"
    assert message.startswith("2 validation errors detected: ")
    assert "'roleSessionName'" in message
    assert "'durationSeconds'" in message


def test_botocore_raises_modelled_exceptions(url: str, issuer: Issuer) -> None:
    client = sts_client(url)
    with pytest.raises(client.exceptions.ExpiredTokenException):
        assume(url, issuer.token(exp=int(time.time()) - 5))
    with pytest.raises(client.exceptions.InvalidIdentityTokenException):
        assume(url, issuer.token(aud="nobody"))


def test_max_session_duration(standin: AwsStandIn, url: str, issuer: Issuer) -> None:
    standin.set_max_session_duration(ROLE, 3600)
    assume(url, issuer.token(), DurationSeconds=3600)
    with pytest.raises(botocore.exceptions.ClientError, match="MaxSessionDuration"):
        assume(url, issuer.token(), DurationSeconds=3601)


def _deny_everyone(standin: AwsStandIn, role: str) -> None:
    """An explicit Deny next to the role's Allow statements: Deny wins."""
    current = standin.role(role)
    assert current is not None
    document = current.trust_policy_document
    deny = {
        "Effect": "Deny",
        "Principal": {"Federated": [s["Principal"]["Federated"] for s in document["Statement"]]},
        "Action": "sts:*",
    }
    standin.update_trust_policy(role, policy(*document["Statement"], deny))


def test_deny_refuses_everyone(standin: AwsStandIn, url: str, issuer: Issuer) -> None:
    _deny_everyone(standin, ROLE)
    response = post(
        url,
        Action="AssumeRoleWithWebIdentity",
        RoleArn=ROLE,
        RoleSessionName="ci",
        WebIdentityToken=issuer.token(),
    )
    assert response.status_code == 403
    assert fault(response) == (
        "Sender",
        "AccessDenied",
        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    )
    assume(url, issuer.token(), role=ADMIN)  # other roles unaffected
    assert [c.outcome for c in standin.calls] == ["AccessDenied", "ok"]


def test_trust_subject_glob(standin: AwsStandIn, url: str, issuer: Issuer) -> None:
    provider = assume(url, issuer.token())["Provider"]
    standin.update_trust_policy(
        ROLE,
        web_identity_trust(provider, [CLIENT_ID], subject_like="repo:acme/*:ref:refs/heads/main"),
    )
    standin.reset()
    assume(url, issuer.token())
    with pytest.raises(botocore.exceptions.ClientError) as info:
        assume(url, issuer.token(sub="repo:evil/app:ref:refs/heads/main"))
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    assert [c.subject for c in standin.calls] == [
        "repo:acme/app:ref:refs/heads/main",
        "repo:evil/app:ref:refs/heads/main",
    ]


def test_injected_http_client(issuer: Issuer) -> None:
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path)
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"jwks_uri": "https://idp.test/keys"})
        return httpx.Response(200, json=issuer.jwks())

    aws = AwsStandIn(http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    register_roles(aws, aws.register_oidc_provider("https://idp.test", [CLIENT_ID]))
    with serve(aws) as base:
        result = assume(base, issuer.token(iss="https://idp.test"))
    assert result["Provider"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.test"
    assert requests == ["/.well-known/openid-configuration", "/keys"]


def test_unreachable_jwks_is_idp_communication_error(issuer: Issuer) -> None:
    aws = AwsStandIn()
    dead = f"http://127.0.0.1:{free_port()}"
    aws.register_oidc_provider(dead, [CLIENT_ID])
    with serve(aws) as base:
        response = post(
            base,
            Action="AssumeRoleWithWebIdentity",
            RoleArn=ROLE,
            RoleSessionName="ci",
            WebIdentityToken=issuer.token(iss=dead),
        )
    assert fault(response)[1] == "IDPCommunicationError"


# ---------------------------------------------------------------- injected failures


def test_fail_next_throttling(standin: AwsStandIn, url: str, issuer: Issuer) -> None:
    standin.fail_next("Throttling")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        assume(url, issuer.token())
    assert info.value.response["Error"]["Code"] == "Throttling"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assume(url, issuer.token())
    assert [c.outcome for c in standin.calls] == ["Throttling", "ok"]


def test_botocore_retries_through_throttling(standin: AwsStandIn, url: str, issuer: Issuer) -> None:
    standin.fail_next("Throttling", count=2)
    retrying = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3})
    result = sts_client(url, retrying).assume_role_with_web_identity(
        RoleArn=ROLE, RoleSessionName="ci", WebIdentityToken=issuer.token()
    )
    assert result["ResponseMetadata"]["RetryAttempts"] == 2
    assert [c.outcome for c in standin.calls] == ["Throttling", "Throttling", "ok"]


def test_fail_next_server_error(standin: AwsStandIn, url: str, issuer: Issuer) -> None:
    standin.fail_next("ServiceUnavailable", status=503)
    response = post(
        url,
        Action="AssumeRoleWithWebIdentity",
        RoleArn=ROLE,
        RoleSessionName="ci",
        WebIdentityToken=issuer.token(),
    )
    assert response.status_code == 503
    assert fault(response)[:2] == ("Receiver", "ServiceUnavailable")
    standin.fail_next("InternalFailure", count=3, status=500)
    standin.reset()
    assert standin.calls == []
    assume(url, issuer.token())


# ---------------------------------------------------------------- GetCallerIdentity


def test_get_caller_identity_with_issued_credentials(
    standin: AwsStandIn, url: str, issuer: Issuer
) -> None:
    creds = assume(url, issuer.token())["Credentials"]
    identity = sts_client(
        url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci-run"
    assert identity["Account"] == ACCOUNT
    assert identity["UserId"].startswith("AROA")
    assert identity["UserId"].endswith(":ci-run")
    assert standin.calls[-1].action == "GetCallerIdentity"
    assert standin.calls[-1].role_arn == ROLE


@pytest.mark.parametrize(
    "creds",
    [
        {
            "aws_access_key_id": "ASIAAAAAAAAAAAAAAAAA",
            "aws_secret_access_key": "x",
            "aws_session_token": "y",
        },
        {"aws_access_key_id": "AKIAAAAAAAAAAAAAAAAA", "aws_secret_access_key": "x"},
        "wrong-session-token",
    ],
    ids=["unknown-key", "no-session-token", "wrong-session-token"],
)
def test_get_caller_identity_refuses_other_credentials(
    url: str, issuer: Issuer, creds: Any
) -> None:
    if creds == "wrong-session-token":
        issued = assume(url, issuer.token())["Credentials"]
        creds = {
            "aws_access_key_id": issued["AccessKeyId"],
            "aws_secret_access_key": issued["SecretAccessKey"],
            "aws_session_token": issued["SessionToken"][:-4] + "AAAA",
        }
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts_client(url, **creds).get_caller_identity()
    assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_query_string_form_is_accepted(standin: AwsStandIn, url: str) -> None:
    response = httpx.get(f"{url}/", params={"Action": "GetCallerIdentity", "Version": "2011-06-15"})
    assert (response.status_code, fault(response)[1]) == (403, "InvalidClientTokenId")
    assert [c.action for c in standin.calls] == ["GetCallerIdentity"]


def test_calls_endpoint(url: str, issuer: Issuer) -> None:
    assume(url, issuer.token())
    post(
        url,
        Action="AssumeRoleWithWebIdentity",
        RoleArn=ROLE,
        RoleSessionName="x",
        WebIdentityToken="zqz",
    )
    calls = httpx.get(f"{url}/_standin/calls").json()
    assert [(c["action"], c["outcome"]) for c in calls] == [
        ("AssumeRoleWithWebIdentity", "ok"),
        ("AssumeRoleWithWebIdentity", "ValidationError"),
    ]
    assert calls[0]["role_arn"] == ROLE
    assert calls[0]["policy_arns"] == []
    assert "zqz" not in json.dumps(calls)
    creds = assume(url, issuer.token())["Credentials"]
    _signin_token(url, creds)
    federation = httpx.get(f"{url}/_standin/federation-calls").json()
    assert [(c["action"], c["outcome"], c["role_arn"]) for c in federation] == [
        ("getSigninToken", "ok", ROLE)
    ]


# ---------------------------------------------------------------- AssumeRoleWithSAML

BROKER_ACS = "https://broker.example.com/saml/acs"


@pytest.fixture(scope="module")
def idp() -> SigningIdp:
    return make_idp("idp.example.com")


@pytest.fixture(scope="module")
def retired_idp() -> SigningIdp:
    return make_idp("retired-cert")


@pytest.fixture
def provider(standin: AwsStandIn, idp: SigningIdp, retired_idp: SigningIdp) -> str:
    """A provider with two certificates, as during a rotation; the IdP signs with the second."""
    return standin.register_saml_provider("corp-idp", [retired_idp.cert_pem, idp.cert_pem])


def assume_saml(
    url: str, assertion: str, principal: str, role: str = ROLE, **extra: Any
) -> dict[str, Any]:
    result: dict[str, Any] = sts_client(url).assume_role_with_saml(
        RoleArn=role, PrincipalArn=principal, SAMLAssertion=assertion, **extra
    )
    return result


def test_saml_success_with_several_roles(
    standin: AwsStandIn, url: str, idp: SigningIdp, provider: str
) -> None:
    roles = [f"{ADMIN},{provider}", f" {provider} , {ROLE} "]  # either order, whitespace tolerated
    assertion = saml_response(idp, roles=roles, source_identity="alice")
    result = assume_saml(url, assertion, provider, DurationSeconds=900)
    assert (
        result["AssumedRoleUser"]["Arn"]
        == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/alice@example.com"
    )
    assert re.fullmatch(r"ASIA[A-Z0-9]{16}", result["Credentials"]["AccessKeyId"])
    assert (result["Subject"], result["SubjectType"]) == ("alice-0001", "persistent")
    assert (result["Issuer"], result["Audience"]) == ("https://idp.example.com/metadata", ACS)
    assert result["SourceIdentity"] == "alice"
    assert base64.b64decode(result["NameQualifier"])
    assume_saml(url, assertion, provider, role=ADMIN)
    assert [
        (c.action, c.role_arn, c.principal_arn, c.session_name, c.outcome) for c in standin.calls
    ] == [
        ("AssumeRoleWithSAML", ROLE, provider, "alice@example.com", "ok"),
        ("AssumeRoleWithSAML", ADMIN, provider, "alice@example.com", "ok"),
    ]
    assert assertion not in repr(standin.calls)


def test_saml_response_level_signature(url: str, idp: SigningIdp, provider: str) -> None:
    assertion = saml_response(idp, roles=[f"{ROLE},{provider}"], sign_what="response")
    assert assume_saml(url, assertion, provider)["Subject"] == "alice-0001"


def test_saml_session_not_on_or_after_caps_expiration(
    url: str, idp: SigningIdp, provider: str
) -> None:
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=20)
    assertion = saml_response(idp, roles=[f"{ROLE},{provider}"], session_not_on_or_after=end)
    assert (
        assume_saml(url, assertion, provider, DurationSeconds=3600)["Credentials"]["Expiration"]
        == end
    )


def _add_role(root: etree._Element) -> None:
    value = find(root, f".//{{{SAML}}}AttributeValue")
    value.text = (value.text or "").replace("deploy", "team/admin")


def _wrap(root: etree._Element) -> None:
    """Signature wrapping: a forged, unsigned assertion next to the genuine signed one."""
    forged = etree.fromstring(etree.tostring(find(root, f"{{{SAML}}}Assertion")))
    forged.set("ID", "_forged")
    root.append(forged)


def _doctype(encoded: str) -> str:
    xml = base64.b64decode(encoded)
    return base64.b64encode(b'<!DOCTYPE x [<!ENTITY e "boom">]>' + xml).decode()


@dataclass(frozen=True)
class SamlCase:
    name: str
    assertion: Callable[[SigningIdp, str], str]
    code: str
    status: int = 400
    role: str = ROLE
    principal: Callable[[str], str] = lambda provider: provider
    message: str = ""


SAML_CASES = [
    SamlCase(
        "role-pair-not-in-assertion",
        lambda i, p: saml_response(i, roles=[f"{ADMIN},{p}"]),
        "AccessDenied",
        403,
    ),
    SamlCase(
        "pair-with-another-provider",
        lambda i, p: saml_response(i, roles=[f"{ROLE},arn:aws:iam::{ACCOUNT}:saml-provider/other"]),
        "AccessDenied",
        403,
    ),
    SamlCase(
        "unsigned",
        lambda i, p: saml_response(i, roles=[f"{ROLE},{p}"], sign_what=None),
        "InvalidIdentityToken",
        message="signature invalid",
    ),
    SamlCase(
        "signed-by-unregistered-cert",
        lambda i, p: saml_response(make_idp("evil"), roles=[f"{ROLE},{p}"]),
        "InvalidIdentityToken",
        message="signature invalid",
    ),
    SamlCase(
        "tampered-after-signing",
        lambda i, p: saml_response(i, roles=[f"{ROLE},{p}"], after_signing=_add_role),
        "InvalidIdentityToken",
        message="signature invalid",
        role=ADMIN,
    ),
    SamlCase(
        "signature-wrapping",
        lambda i, p: saml_response(i, roles=[f"{ROLE},{p}"], after_signing=_wrap),
        "InvalidIdentityToken",
        message="exactly one Assertion",
    ),
    SamlCase(
        "expired",
        lambda i, p: saml_response(i, roles=[f"{ROLE},{p}"], lifetime=timedelta(seconds=-1)),
        "ExpiredTokenException",
    ),
    SamlCase(
        "no-role-session-name",
        lambda i, p: saml_response(i, roles=[f"{ROLE},{p}"], session_name=None),
        "InvalidIdentityToken",
    ),
    SamlCase(
        "bad-role-session-name",
        lambda i, p: saml_response(i, roles=[f"{ROLE},{p}"], session_name="a b"),
        "InvalidIdentityToken",
    ),
    SamlCase(
        "foreign-audience",
        lambda i, p: saml_response(i, roles=[f"{ROLE},{p}"], audience="https://sp.example"),
        "InvalidIdentityToken",
    ),
    SamlCase(
        "doctype",
        lambda i, p: _doctype(saml_response(i, roles=[f"{ROLE},{p}"])),
        "InvalidIdentityToken",
        message="DTD",
    ),
    SamlCase("not-base64", lambda i, p: "this is not base64!", "InvalidIdentityToken"),
    SamlCase(
        "not-xml", lambda i, p: base64.b64encode(b"<unclosed").decode(), "InvalidIdentityToken"
    ),
    SamlCase(
        "unregistered-provider",
        lambda i, p: saml_response(
            i, roles=[f"{ROLE},arn:aws:iam::{ACCOUNT}:saml-provider/nobody"]
        ),
        "InvalidIdentityToken",
        principal=lambda p: f"arn:aws:iam::{ACCOUNT}:saml-provider/nobody",
    ),
    SamlCase(
        "principal-not-a-saml-provider",
        lambda i, p: saml_response(i, roles=[f"{ROLE},{p}"]),
        "ValidationError",
        principal=lambda p: f"arn:aws:iam::{ACCOUNT}:role/not-a-provider",
    ),
]


@pytest.mark.parametrize("case", SAML_CASES, ids=attrgetter("name"))
def test_saml_rejections(
    case: SamlCase, standin: AwsStandIn, url: str, idp: SigningIdp, provider: str
) -> None:
    response = post(
        url,
        Action="AssumeRoleWithSAML",
        RoleArn=case.role,
        PrincipalArn=case.principal(provider),
        SAMLAssertion=case.assertion(idp, provider),
    )
    _, code, message = fault(response)
    assert (response.status_code, code) == (case.status, case.code)
    assert case.message in message
    assert [c.outcome for c in standin.calls] == [case.code]
    assert not standin.issued_access_key_ids


def test_saml_trust_conditions(
    standin: AwsStandIn, url: str, idp: SigningIdp, provider: str
) -> None:
    standin.update_trust_policy(ROLE, saml_trust(provider, BROKER_ACS))
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        assume_saml(url, saml_response(idp, roles=[f"{ROLE},{provider}"]), provider)
    assert (
        assume_saml(
            url, saml_response(idp, roles=[f"{ROLE},{provider}"], recipient=BROKER_ACS), provider
        )["Audience"]
        == BROKER_ACS
    )
    _deny_everyone(standin, ROLE)
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        assume_saml(
            url, saml_response(idp, roles=[f"{ROLE},{provider}"], recipient=BROKER_ACS), provider
        )


# ---------------------------------------------------------------- federation endpoint and console


def _shown(html: str, ident: str) -> str:
    """The text a browser shows for the element with this id."""
    found = lxml.html.fromstring(html).find(f'.//*[@id="{ident}"]')
    assert found is not None, ident
    return "".join(str(text) for text in found.itertext())


def _signin_token(url: str, creds: dict[str, Any], duration: str | None = "3600") -> httpx.Response:
    session = {
        "sessionId": creds["AccessKeyId"],
        "sessionKey": creds["SecretAccessKey"],
        "sessionToken": creds["SessionToken"],
    }
    params = {"Action": "getSigninToken", "Session": json.dumps(session)}
    if duration is not None:
        params["SessionDuration"] = duration
    return httpx.get(f"{url}/federation", params=params)


def _login(
    client: httpx.Client,
    url: str,
    token: str,
    destination: str = "https://console.aws.amazon.com/s3/home",
) -> httpx.Response:
    params = {
        "Action": "login",
        "Issuer": "https://broker.example.com",
        "Destination": destination,
        "SigninToken": token,
    }
    return client.get(f"{url}/federation", params=params)


def test_console_sign_in(standin: AwsStandIn, url: str, issuer: Issuer) -> None:
    creds = assume(url, issuer.token())["Credentials"]
    response = _signin_token(url, creds)
    assert response.status_code == 200
    token = response.json()["SigninToken"]
    destination = "https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1#Instances:"
    with httpx.Client(follow_redirects=True) as browser:
        page = _login(browser, url, token, destination)
        assert page.status_code == 200
        assert page.history[0].status_code == 302
        assert page.history[0].headers["location"].startswith("/console?destination=https%3A%2F%2F")
        assert "not AWS" in (lxml.html.fromstring(page.text).findtext(".//title") or "")
        assert "Local AWS stand-in — this is not AWS" in page.text
        assert (
            _shown(page.text, "caller-arn") == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci-run"
        )
        assert _shown(page.text, "destination") == destination
        again = _login(browser, url, token)
        assert again.status_code == 400, "sign-in tokens are single-use"
    assert [c.action for c in standin.calls] == ["AssumeRoleWithWebIdentity", "GetCallerIdentity"]
    assert [(c.action, c.outcome) for c in standin.federation_calls] == [
        ("getSigninToken", "ok"),
        ("login", "ok"),
        ("login", "Invalid SigninToken: unknown, expired or already used"),
    ]
    assert standin.federation_calls[0].session_duration == 3600
    assert token not in repr(standin.federation_calls)


def test_console_without_session(url: str) -> None:
    response = httpx.get(f"{url}/console", cookies={"aws-standin-console": "forged"})
    assert response.status_code == 401
    assert "this is not AWS" in response.text


@pytest.mark.parametrize(
    "destination",
    [
        "http://console.aws.amazon.com/",
        "https://evil.example.com/",
        "https://console.aws.amazon.com.evil.example/",
        "https://user@console.aws.amazon.com/",
        "https://console.aws.amazon.com:8443/",
        "https://console.amazonaws-us-gov.com/",
        "javascript:alert(1)",
        "",
    ],
)
def test_login_refuses_off_console_destination(
    standin: AwsStandIn, url: str, issuer: Issuer, destination: str
) -> None:
    token = _signin_token(url, assume(url, issuer.token())["Credentials"]).json()["SigninToken"]
    with httpx.Client() as browser:
        assert _login(browser, url, token, destination).status_code == 400
        assert "aws-standin-console" not in browser.cookies
        # The refused attempt did not burn the token.
        assert _login(browser, url, token).status_code == 302


@pytest.mark.parametrize("duration", ["899", "43201", "abc"])
def test_get_signin_token_bad_duration(url: str, issuer: Issuer, duration: str) -> None:
    response = _signin_token(url, assume(url, issuer.token())["Credentials"], duration)
    assert response.status_code == 400
    assert response.text
    assert "Signin" not in response.text


def test_get_signin_token_needs_issued_credentials(url: str, issuer: Issuer) -> None:
    creds = assume(url, issuer.token())["Credentials"]
    forged = creds | {"SecretAccessKey": "x" * 40}
    assert _signin_token(url, forged).status_code == 400
    assert (
        httpx.get(
            f"{url}/federation", params={"Action": "getSigninToken", "Session": "{"}
        ).status_code
        == 400
    )
    assert httpx.get(f"{url}/federation", params={"Action": "nope"}).status_code == 400


def test_signin_token_expires_after_15_minutes(issuer: Issuer) -> None:
    now = [datetime.now(UTC)]
    aws = AwsStandIn(clock=lambda: now[0])
    register_roles(aws, aws.register_oidc_provider(issuer.url, [CLIENT_ID]))
    with serve(aws) as base, httpx.Client() as browser:
        creds = assume(base, issuer.token())["Credentials"]
        token = _signin_token(base, creds).json()["SigninToken"]
        now[0] += timedelta(minutes=15, seconds=1)
        assert _login(browser, base, token).status_code == 400


def test_partition_console_hosts(issuer: Issuer) -> None:
    aws = AwsStandIn(partition="aws-us-gov")
    register_roles(aws, aws.register_oidc_provider(issuer.url, [CLIENT_ID]), "aws-us-gov")
    role = f"arn:aws-us-gov:iam::{ACCOUNT}:role/deploy"
    with serve(aws) as base, httpx.Client(follow_redirects=True) as browser:
        result = assume(base, issuer.token(), role=role)
        assert result["AssumedRoleUser"]["Arn"].startswith("arn:aws-us-gov:sts::")
        assert result["Provider"].startswith("arn:aws-us-gov:iam::")
        token = _signin_token(base, result["Credentials"]).json()["SigninToken"]
        assert _login(browser, base, token, "https://console.aws.amazon.com/").status_code == 400
        page = _login(browser, base, token, "https://console.amazonaws-us-gov.com/ec2")
        assert page.status_code == 200
        assert _shown(page.text, "caller-arn").startswith("arn:aws-us-gov:sts::")


# ---------------------------------------------------------------- hygiene and the CLI


def test_no_secret_reaches_a_log(
    caplog: pytest.LogCaptureFixture, standin: AwsStandIn, url: str, issuer: Issuer
) -> None:
    caplog.set_level(logging.DEBUG, logger="broker")
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    token = issuer.token()
    creds = assume(url, token)["Credentials"]
    signin = _signin_token(url, creds).json()["SigninToken"]
    with httpx.Client(follow_redirects=True) as browser:
        _login(browser, url, signin)
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("broker", "uvicorn"))
    )
    for secret in (token, creds["SecretAccessKey"], creds["SessionToken"], signin):
        assert secret not in ours


def test_cli_no_verify_accepts_any_well_formed_token(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "broker_demo.aws", "--port", str(port)]
    output = tmp_path / "standin.txt"
    with running([*command, "--latency-ms", "1", "--no-verify"], output=output) as process:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(
            f"{base}/_standin/calls",
            timeout=20,
            what="python -m broker_demo.aws",
            alive=process,
            output=read_text(output),
        )
        key = ec.generate_private_key(ec.SECP256R1())
        claims = {
            "iss": "https://anything.example",
            "sub": "bench",
            "aud": "x",
            "exp": int(time.time()) + 60,
        }
        result = assume(base, jwt.encode(claims, key, "ES256"))
        assert result["Provider"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/anything.example"
        malformed = post(
            base,
            Action="AssumeRoleWithWebIdentity",
            RoleArn=ROLE,
            RoleSessionName="b",
            WebIdentityToken="abcd.efgh",
        )
        assert fault(malformed)[1] in ("InvalidIdentityToken", "ValidationError")
