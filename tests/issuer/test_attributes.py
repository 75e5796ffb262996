"""Issuer grants: how mapping routes them, and the session values an identity's claims fill in."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

import pytest

from broker.config import Config, parse_config
from broker.errors import SessionAttributeRefused
from broker.identity import Identity, NoProof, SignedRole, WebIdentityToken
from broker.issuer.attributes import describe, render, role_session_name
from broker.issuer.mint import broker_session_seconds, session_seconds
from broker.mapping import map_roles

PROD = "111122223333"
ADMIN = f"arn:aws:iam::{PROD}:role/Admin"
LEGACY = f"arn:aws:iam::{PROD}:role/Legacy"
IDP_PROVIDER = f"arn:aws:iam::{PROD}:saml-provider/corp"
BROKER_PROVIDER = f"arn:aws:iam::{PROD}:saml-provider/broker"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_config(rules: list[Any] | None = None, **admin: Any) -> Config:
    return parse_config(
        {
            "identity_providers": {
                "corp": {
                    "type": "saml",
                    "entity_id": "https://idp.example.com",
                    "certificates": ["MIIB"],
                },
                "gh": {"type": "oidc", "issuer": "https://token.example.com", "audiences": ["a"]},
            },
            "issuer": {"signing_keys": [{"key_file": "/k", "certificate_file": "/c"}]},
            "roles": {
                "admin": {
                    "arn": ADMIN,
                    "session_tags": {"Department": "{department}", "Team": "t-{team}"},
                    "transitive_tags": ["Department"],
                    "source_identity": "{email}",
                    **admin,
                },
                "legacy": {"arn": LEGACY, "via": "idp"},
            },
            "rules": rules or [{"name": "all", "grant": ["admin", "legacy"]}],
        }
    )


def saml(attributes: dict[str, Any], signed: tuple[SignedRole, ...] = ()) -> Identity:
    return Identity(
        "saml",
        "corp",
        "https://idp.example.com",
        "alice",
        attributes,
        NOW,
        NoProof(),
        signed_roles=signed,
        session_name="alice@example.com",
    )


def oidc(claims: dict[str, Any]) -> Identity:
    proof = WebIdentityToken("t", session_name="gh-app")
    return Identity("oidc", "gh", "https://token.example.com", "repo:o/a", claims, NOW, proof)


GOOD = {"department": ["Engineering"], "team": ["db"], "email": ["alice@example.com"]}


def test_issuer_grant_needs_no_signed_pair_and_names_the_brokers_provider() -> None:
    decision = map_roles(saml(GOOD), make_config())
    assert [g.name for g in decision.grants] == ["admin"]
    admin = decision.grants[0]
    assert (admin.via, admin.principal_arn) == ("issuer", BROKER_PROVIDER)
    # The pass-through role still needs the IdP's signature: STS checks it.
    assert [r.arn for r in decision.refused] == [LEGACY]


def test_a_pair_the_idp_signed_does_not_reroute_an_issuer_role() -> None:
    signed = (SignedRole(ADMIN, IDP_PROVIDER), SignedRole(LEGACY, IDP_PROVIDER))
    grants = {g.name: g for g in map_roles(saml(GOOD, signed), make_config()).grants}
    assert grants["admin"].principal_arn == BROKER_PROVIDER
    assert (grants["legacy"].via, grants["legacy"].principal_arn) == ("idp", IDP_PROVIDER)


def test_the_idps_signature_alone_never_grants_an_issuer_role() -> None:
    cfg = make_config([{"name": "legacy-only", "grant": "legacy"}])
    decision = map_roles(saml(GOOD, (SignedRole(ADMIN, IDP_PROVIDER),)), cfg)
    assert ADMIN not in [g.arn for g in decision.grants]
    assert "reached via issuer" in next(r.reason for r in decision.refused if r.arn == ADMIN)


def test_values_from_saml_attributes_and_oidc_claims() -> None:
    admin = map_roles(saml(GOOD), make_config()).grants[0]
    values = render(saml(GOOD), admin, 3600)
    assert values.tags == (("Department", "Engineering"), ("Team", "t-db"))
    assert values.transitive == ("Department",)
    assert (values.source_identity, values.session_name) == (
        "alice@example.com",
        "alice@example.com",
    )
    claims = {"department": "Ops", "team": 7, "email": "ci@example.com"}
    admin = map_roles(oidc(claims), make_config()).grants[0]
    values = render(oidc(claims), admin, 900)
    assert values.tags == (("Department", "Ops"), ("Team", "t-7"))
    assert (values.session_name, values.duration) == ("gh-app", 900)
    anonymous = replace(saml(GOOD), session_name=None, subject="CN=Alice Smith")
    assert role_session_name(anonymous) == "CN=Alice-Smith"


@dataclass(frozen=True)
class Over:
    name: str
    attributes: dict[str, Any]
    attribute: str
    says: str


OVER = [
    Over(
        "300-character department",
        {"department": ["d" * 300]},
        "session tag 'Department'",
        "at most 256",
    ),
    Over("tag value charset", {"department": ["R&D"]}, "session tag 'Department'", "only letters"),
    Over("missing claim", {"department": None}, "session tag 'Department'", "no 'department'"),
    Over("several values", {"department": ["a", "b"]}, "session tag 'Department'", "2 values"),
    Over("object value", {"team": [{"x": 1}]}, "session tag 'Team'", "not a single value"),
    Over("illegal source identity", {"email": ["alice smith"]}, "SourceIdentity", "ASCII letters"),
    Over("reserved source identity", {"email": ["aws:admin"]}, "SourceIdentity", "reserved"),
    Over("short source identity", {"email": ["a"]}, "SourceIdentity", "2 to 64"),
    Over("long source identity", {"email": ["a" * 65]}, "SourceIdentity", "2 to 64"),
]


@pytest.mark.parametrize("case", OVER, ids=attrgetter("name"))
def test_values_aws_would_refuse_are_refused_naming_role_and_attribute(case: Over) -> None:
    attributes = {k: v for k, v in {**GOOD, **case.attributes}.items() if v is not None}
    identity = saml(attributes)
    admin = map_roles(identity, make_config()).grants[0]
    with pytest.raises(SessionAttributeRefused) as err:
        render(identity, admin, 3600)
    assert err.value.status == 403
    assert err.value.code == "SessionAttributeRefused"
    assert "'admin'" in err.value.detail
    assert case.attribute in err.value.detail
    assert case.says in err.value.detail
    assert err.value.extra == {"role": ADMIN, "attribute": case.attribute}
    assert "d" * 300 not in err.value.detail  # the offending value is never echoed
    assert describe(identity, admin, 3600) == {"via": "issuer", "refused": err.value.detail}


def test_describe_for_explain() -> None:
    grants = {
        g.name: g
        for g in map_roles(saml(GOOD, (SignedRole(LEGACY, IDP_PROVIDER),)), make_config()).grants
    }
    assert describe(saml(GOOD), grants["legacy"], 3600) == {"via": "idp"}
    shown = describe(saml(GOOD), grants["admin"], 3600)
    assert shown["session"]["PrincipalTag"] == {"Department": "Engineering", "Team": "t-db"}


def test_session_length_never_outlives_the_idps_session() -> None:
    cfg = make_config()
    assert session_seconds(cfg, saml(GOOD), NOW) == 28800
    ends = replace(saml(GOOD), session_not_on_or_after=NOW + timedelta(hours=1))
    assert session_seconds(cfg, ends, NOW) == 3600
    assert broker_session_seconds(cfg, ends, NOW) == 3600
    nothing_via_issuer = make_config([{"name": "legacy-only", "grant": "legacy"}])
    assert broker_session_seconds(nothing_via_issuer, ends, NOW) is None
    plain = parse_config(
        {
            "identity_providers": {
                "gh": {"type": "oidc", "issuer": "https://t.example.com", "audiences": ["a"]}
            }
        }
    )
    assert session_seconds(plain, saml(GOOD), NOW) is None
