"""The stand-in's IAM registry refuses what IAM refuses; the request context it builds for trust policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker_demo import iam, limits
from broker_demo.authorize import web_identity_caller
from broker_demo.aws import AwsStandIn
from broker_demo.state import StsFault
from broker_demo.webidentity import VerifiedToken
from tests.fakes.signed_saml import make_idp
from tests.fakes.trust import saml_trust

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deploy"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
IDP = make_idp("idp.example.com")


def test_register_role_and_read_it_back() -> None:
    aws = AwsStandIn()
    assert aws.register_role(ROLE, saml_trust(PROVIDER), 7200) == ROLE
    role = aws.role(ROLE)
    assert role is not None
    assert (role.account_id, role.max_session_duration) == (ACCOUNT, 7200)
    assert role.trust_policy_document == saml_trust(PROVIDER)
    aws.set_max_session_duration(ROLE, 43200)
    aws.update_trust_policy(ROLE, saml_trust(PROVIDER, "https://b.example/acs"))
    updated = aws.role(ROLE)
    assert updated is not None
    assert updated.max_session_duration == 43200
    assert updated.trust_policy_document["Statement"][0]["Condition"]
    assert aws.role(ROLE.replace("deploy", "nobody")) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: a.register_role(ROLE, saml_trust(PROVIDER), 3599), "MaxSessionDuration"),
        (lambda a: a.register_role(ROLE, saml_trust(PROVIDER), 43201), "MaxSessionDuration"),
        (lambda a: a.register_role(ROLE, {"Statement": []}), "MalformedPolicyDocument"),
        (lambda a: a.register_role("arn:aws-cn:iam::111122223333:role/x", {}), "partition"),
        (lambda a: a.register_role(f"arn:aws:iam::{ACCOUNT}:user/bob", {}), "role ARN"),
        (lambda a: a.set_max_session_duration(ROLE, 3600), "no role"),
        (lambda a: a.update_trust_policy(ROLE, saml_trust(PROVIDER)), "no role"),
        (lambda a: a.register_saml_provider("corp"), "either"),
        (lambda a: a.register_saml_provider("corp", [IDP.cert_pem], metadata="x"), "either"),
        (lambda a: a.register_saml_provider("corp", []), "at least one"),
        (lambda a: a.register_saml_provider("bad name", [IDP.cert_pem]), "name"),
        (lambda a: a.register_saml_provider("corp", [IDP.cert_pem] * 11), "at most 10"),
        (lambda a: a.register_saml_provider("corp", [IDP.cert_pem], "1"), "12 digits"),
        (
            lambda a: a.register_saml_provider("c", metadata=IDP.metadata(), entity_id="x"),
            "entity id",
        ),
        (lambda a: a.register_saml_provider("corp", metadata="<x/>"), "EntityDescriptor"),
        (lambda a: a.register_saml_provider("corp", metadata="not xml"), "parse metadata"),
        (lambda a: a.register_oidc_provider("ftp://x", ["a"]), "http"),
        (lambda a: a.register_oidc_provider("https://x?q=1", ["a"]), "query"),
        (lambda a: a.register_oidc_provider("https://x", ["a"] * 101), "at most 100"),
        (lambda a: a.register_oidc_provider("https://x", [""]), "1 to 255"),
        (lambda a: a.register_oidc_provider("https://x", ["a"], thumbprints=["ab"]), "40"),
        (
            lambda a: a.register_oidc_provider("https://x", ["a"], thumbprints=["a" * 40] * 6),
            "at most 5",
        ),
    ],
)
def test_registrations_iam_refuses(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(AwsStandIn())


def test_metadata_gives_every_signing_certificate_and_the_entity_id() -> None:
    other = make_idp("next")
    metadata = IDP.metadata("https://idp.example.com/saml", other.cert_pem)
    encryption = metadata.replace(
        '<md:KeyDescriptor use="signing">', '<md:KeyDescriptor use="encryption">', 1
    )
    entity, certificates = iam.read_metadata(metadata)
    assert entity == "https://idp.example.com/saml"
    assert [c.split()[2][:40] for c in certificates] == [
        c.split()[2][:40] for c in (other.cert_pem, IDP.cert_pem)
    ]
    assert len(iam.read_metadata(encryption)[1]) == 1  # an encryption key signs nothing
    doctype = '<!DOCTYPE x [<!ENTITY e "boom">]>' + metadata
    with pytest.raises(ValueError, match="parse metadata"):
        iam.read_metadata(doctype)
    no_keys = metadata.replace('use="signing"', 'use="encryption"')
    with pytest.raises(ValueError, match="signing certificate"):
        iam.read_metadata(no_keys)


def test_oidc_thumbprints_are_kept_lower_case() -> None:
    aws = AwsStandIn()
    arn = aws.register_oidc_provider("https://token.example.com/", ["sts"], thumbprints=["AB" * 20])
    assert arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.example.com"


def _token(path: str, **claims: Any) -> VerifiedToken:
    provider = iam.OidcProvider(f"arn:aws:iam::{ACCOUNT}:oidc-provider/{path}", "x", (), ACCOUNT)
    body = {"sub": "user-1", "aud": "client-a"} | claims
    return VerifiedToken(provider, "x", "user-1", "client-a", None, body)


def test_web_identity_condition_keys() -> None:
    """reference_policies_iam-condition-keys.md: `<provider>:aud`, `:sub`, `:amr`, `:azp`."""
    context = web_identity_caller(
        _token("Token.Example.com/Tenant", amr=["pwd", "mfa"], azp="cli")
    ).context
    assert context == {
        "token.example.com/tenant:sub": ("user-1",),
        "token.example.com/tenant:aud": ("client-a",),
        "token.example.com/tenant:amr": ("pwd", "mfa"),
        "token.example.com/tenant:azp": ("cli",),
    }


def test_google_aud_is_azp_when_set_and_oaud_is_aud() -> None:
    """reference_policies_iam-condition-keys.md, `accounts.google.com:aud` and `:oaud`."""
    hybrid = web_identity_caller(_token("accounts.google.com", azp="web-client")).context
    assert hybrid["accounts.google.com:aud"] == ("web-client",)
    assert hybrid["accounts.google.com:oaud"] == ("client-a",)
    plain = web_identity_caller(_token("accounts.google.com")).context
    assert plain["accounts.google.com:aud"] == plain["accounts.google.com:oaud"] == ("client-a",)


def test_session_tag_context_keys() -> None:
    tags = limits.session_tags([("Team", ["a"]), ("Project", ["b"])], ["Team"])
    token = _token("t.example.com")
    caller = web_identity_caller(
        VerifiedToken(token.provider, "x", "user-1", "client-a", "alice", token.claims, tags)
    )
    assert caller.context["aws:tagkeys"] == ("Team", "Project")
    assert caller.context["aws:requesttag/team"] == ("a",)
    assert caller.context["sts:transitivetagkeys"] == ("Team",)
    assert caller.context["sts:sourceidentity"] == ("alice",)


def test_limits_directly() -> None:
    assert limits.packed_percent(None, (), limits.SessionTags()) == 0
    assert limits.packed_percent("{}", ("arn:aws:iam::aws:policy/X",), limits.SessionTags()) >= 1
    assert limits.source_identity(None) is None
    assert limits.source_identity("alice@example.com") == "alice@example.com"
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert limits.session_end(now, 3600, 3600) == now + timedelta(hours=1)
    capped = now + timedelta(minutes=20)
    assert limits.session_end(now, 3600, 7200, not_on_or_after=capped) == capped
    assert limits.session_end(now, 3600, 7200, saml_session_duration=900) == now + timedelta(
        seconds=900
    )
    with pytest.raises(StsFault, match="MaxSessionDuration"):
        limits.session_end(now, 3601, 3600)
    with pytest.raises(StsFault, match="at most 50"):
        limits.session_tags([(f"k{i}", ["v"]) for i in range(51)])
    assert limits.session_tags([(f"k{i}", [""]) for i in range(50)]).tags[0] == ("k0", "")
