"""AWS attribute parsing: Role pairs, RoleSessionName, SessionDuration, session tags."""

from __future__ import annotations

import pytest
from lxml import etree

from broker.errors import InvalidAssertion, InvalidRoleAttribute, InvalidSessionAttribute
from broker.identity import SignedRole
from broker.saml.attributes import (
    AWS,
    ROLE,
    ROLE_SESSION_NAME,
    parse_aws,
    parse_role,
    read_attributes,
)

ROLE_ARN = "arn:aws:iam::123456789012:role/team/Deploy"
PROVIDER = "arn:aws:iam::123456789012:saml-provider/Corp"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def attrs(**extra: list[str]) -> dict[str, list[str]]:
    base = {ROLE: [f"{ROLE_ARN},{PROVIDER}"], ROLE_SESSION_NAME: ["alice@example.com"]}
    base.update({AWS + k.replace("__", ":"): v for k, v in extra.items()})
    return base


@pytest.mark.parametrize(
    "value",
    [f"{ROLE_ARN},{PROVIDER}", f"{PROVIDER},{ROLE_ARN}", f"  {ROLE_ARN} ,\n {PROVIDER} "],
    ids=["role_first", "provider_first", "whitespace"],
)
def test_role_pair_either_order(value: str) -> None:
    assert parse_role(value, 0, "aws") == SignedRole(ROLE_ARN, PROVIDER)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (ROLE_ARN, "1 part"),
        (f"{ROLE_ARN},{PROVIDER},{PROVIDER}", "3 part"),
        (f"{ROLE_ARN},{ROLE_ARN}", "one IAM role ARN"),
        (f"{ROLE_ARN},arn:aws:iam::123456789012:oidc-provider/x", "one IAM role ARN"),
        (f"{ROLE_ARN},arn:aws:iam::12345:saml-provider/Corp", "one IAM role ARN"),
        ("arn:aws:iam::123456789012:user/bob," + PROVIDER, "one IAM role ARN"),
        (f"{ROLE_ARN.replace(':aws:', ':aws-us-gov:')},{PROVIDER}", "partition aws-us-gov"),
    ],
    ids=["single", "triple", "two_roles", "oidc_provider", "short_account", "user_arn", "gov"],
)
def test_malformed_role_refused(value: str, reason: str) -> None:
    with pytest.raises(InvalidRoleAttribute) as info:
        parse_role(value, 0, "aws")
    assert reason in (info.value.log_detail or "")
    assert ROLE_ARN not in info.value.detail


def test_partition_aware() -> None:
    gov = f"{ROLE_ARN.replace(':aws:', ':aws-us-gov:')},{PROVIDER.replace(':aws:', ':aws-us-gov:')}"
    assert parse_role(gov, 0, "aws-us-gov").role_arn.startswith("arn:aws-us-gov:")


def test_duplicate_pairs_collapse_and_order_is_kept() -> None:
    other = ROLE_ARN.replace("Deploy", "Read")
    parsed = parse_aws(
        {
            **attrs(),
            ROLE: [f"{ROLE_ARN},{PROVIDER}", f"{PROVIDER},{other}", f"{ROLE_ARN},{PROVIDER}"],
        },
        "aws",
    )
    assert parsed.roles == (SignedRole(ROLE_ARN, PROVIDER), SignedRole(other, PROVIDER))


def test_session_values() -> None:
    parsed = parse_aws(attrs(SessionDuration=["43200"], SourceIdentity=["alice"]), "aws")
    assert (parsed.session_name, parsed.session_duration) == ("alice@example.com", 43200)


@pytest.mark.parametrize(
    "extra",
    [
        {"RoleSessionName": ["x"]},
        {"RoleSessionName": ["a" * 65]},
        {"RoleSessionName": ["alice smith"]},
        {"RoleSessionName": ["a", "b"]},
        {"SessionDuration": ["899"]},
        {"SessionDuration": ["43201"]},
        {"SessionDuration": ["1h"]},
        {"SessionDuration": ["٣٦٠٠"]},
        {"SourceIdentity": ["a/b"]},
        {"PrincipalTag__team": ["a", "b"]},
        {"PrincipalTag__bad#key": ["v"]},
        {"PrincipalTag__team": ["v" * 257]},
        {"TransitiveTagKeys": ["team"]},
    ],
    ids=lambda e: next(iter(e)) + "=" + repr(next(iter(e.values())))[:20],
)
def test_bad_session_attributes(extra: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidSessionAttribute):
        parse_aws(attrs(**extra), "aws")


def test_missing_session_name_and_role() -> None:
    with pytest.raises(InvalidSessionAttribute):
        parse_aws({ROLE: [f"{ROLE_ARN},{PROVIDER}"]}, "aws")
    with pytest.raises(InvalidRoleAttribute):
        parse_aws({ROLE_SESSION_NAME: ["alice"]}, "aws")


def test_tags_and_transitive_keys() -> None:
    parse_aws(attrs(PrincipalTag__Team=["platform"], TransitiveTagKeys=["team"]), "aws")


def _assertion(body: str) -> etree._Element:
    return etree.fromstring(
        f'<saml:Assertion xmlns:saml="{SAML}" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><saml:AttributeStatement>'
        f"{body}</saml:AttributeStatement></saml:Assertion>"
    )


def test_read_attributes_merges_strips_and_skips_nil() -> None:
    doc = _assertion(
        '<saml:Attribute Name="g"><saml:AttributeValue> a </saml:AttributeValue>'
        '<saml:AttributeValue xsi:nil="true"/><saml:AttributeValue/></saml:Attribute>'
        '<saml:Attribute Name="g"><saml:AttributeValue>b</saml:AttributeValue></saml:Attribute>'
    )
    assert read_attributes(doc) == {"g": ["a", "b"]}


def test_read_attributes_refuses_element_content() -> None:
    doc = _assertion(
        '<saml:Attribute Name="g"><saml:AttributeValue>a<b/>c</saml:AttributeValue></saml:Attribute>'
    )
    with pytest.raises(InvalidAssertion):
        read_attributes(doc)
