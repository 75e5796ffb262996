"""The issuer section and roles' session templates, checked at load against AWS's limits."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytest

from broker.config import parse_config
from broker.errors import ConfigError

ARN = "arn:aws:iam::111122223333:role/Admin"


def config(role: dict[str, Any], *, issuer: bool = True, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "identity_providers": {
            "gh": {"type": "oidc", "issuer": "https://token.example.com", "audiences": ["a"]}
        },
        "roles": {"admin": {"arn": ARN, **role}},
        "rules": [{"name": "all", "grant": "admin"}],
        **extra,
    }
    if issuer:
        doc["issuer"] = {
            "signing_keys": [{"key_file": "/k.pem", "certificate_file": "/c.pem"}],
        }
    return doc


@dataclass(frozen=True)
class Bad:
    name: str
    role: dict[str, Any]
    says: str
    issuer: bool = True


BAD = [
    Bad("tag key too long", {"session_tags": {"K" * 129: "x"}}, "1 to 128 characters"),
    Bad("tag key charset", {"session_tags": {"Cost Center!": "x"}}, "only letters, digits"),
    Bad("tag key reserved", {"session_tags": {"AWS:Team": "x"}}, "reserved for AWS"),
    Bad("51 tags", {"session_tags": {f"k{i}": "v" for i in range(51)}}, "51 session tags"),
    Bad("keys differ by case", {"session_tags": {"Dept": "a", "dept": "b"}}, "only in case"),
    Bad(
        "transitive key not a tag",
        {"session_tags": {"Dept": "{d}"}, "transitive_tags": ["Team"]},
        "transitive tag 'Team'",
    ),
    Bad("value literal too long", {"session_tags": {"K": "v" * 257 + "{d}"}}, "at most 256"),
    Bad("value literal charset", {"session_tags": {"K": "a;{d}"}}, "only letters"),
    Bad("value template grammar", {"session_tags": {"K": "{d"}}, "bad template"),
    Bad("value format spec", {"session_tags": {"K": "{d:>10}"}}, "no format spec"),
    Bad("empty placeholder", {"session_tags": {"K": "{}"}}, "names no claim"),
    Bad("source identity literal", {"source_identity": "a"}, "2 to 64"),
    Bad("source identity reserved", {"source_identity": "aws:{email}"}, "reserved for AWS"),
    Bad("source identity charset", {"source_identity": "user {email}"}, "outside ASCII"),
    Bad("source identity too long", {"source_identity": "x" * 65 + "{e}"}, "longer than 64"),
    Bad("via issuer without issuer", {"via": "issuer"}, "no issuer section", issuer=False),
    Bad("tags without issuer", {"session_tags": {"K": "{d}"}}, "need via: issuer", issuer=False),
    Bad("tags on an idp role", {"via": "idp", "source_identity": "{email}"}, "need via: issuer"),
]


@pytest.mark.parametrize("case", BAD, ids=attrgetter("name"))
def test_bad_session_templates_stop_the_load(case: Bad) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config(case.role, issuer=case.issuer))
    assert case.says in err.value.detail


def test_templates_and_defaults() -> None:
    role = {
        "session_tags": {"Department": "{department}", "CostCenter": "cc-{/org/cost_center}"},
        "transitive_tags": ["department"],  # AWS compares tag keys without case
        "source_identity": "{email}",
    }
    cfg = parse_config(config(role))
    assert cfg.issuer is not None
    assert cfg.issuer.provider_name == "broker"
    assert cfg.issuer.entity(cfg.server.base_url) == "http://127.0.0.1:8080/issuer"
    assert cfg.issuer.session_seconds == 28800
    assert cfg.issuer.provider_arn("aws-us-gov", "111122223333") == (
        "arn:aws-us-gov:iam::111122223333:saml-provider/broker"
    )
    assert cfg.via_of(cfg.roles["admin"]) == "issuer"
    assert parse_config(config({})).via_of(parse_config(config({})).roles["admin"]) == "issuer"
    plain = parse_config(config({}, issuer=False))
    assert plain.via_of(plain.roles["admin"]) == "idp"


@pytest.mark.parametrize(
    ("issuer", "says"),
    [
        ({"signing_keys": []}, "at least 1"),
        ({"signing_keys": [{"key_file": "/k"}]}, "certificate_file"),
        (
            {
                "provider_name": "bad name",
                "signing_keys": [{"key_file": "/k", "certificate_file": "/c"}],
            },
            "provider_name",
        ),
        (
            {
                "entity_id": "http://broker.example.com/i",
                "signing_keys": [{"key_file": "/k", "certificate_file": "/c"}],
            },
            "https",
        ),
        (
            {"session_seconds": 10, "signing_keys": [{"key_file": "/k", "certificate_file": "/c"}]},
            "session_seconds",
        ),
    ],
    ids=["no keys", "no certificate", "provider name", "plain http entity", "too short"],
)
def test_bad_issuer_section(issuer: dict[str, Any], says: str) -> None:
    doc = config({}, issuer=False)
    doc["issuer"] = issuer
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert says in err.value.detail


def test_keys_are_read_and_matched_when_the_app_is_built(tmp_path: Path) -> None:
    from broker.app import create_app
    from tests.fakes.issuer import issuer_section, signing_keys

    one, two = signing_keys(tmp_path, "one", "two")
    mismatched = {"key_file": str(one.key_file), "certificate_file": str(two.cert_file)}
    doc = config({}, issuer=False)
    doc["issuer"] = {"signing_keys": [mismatched]}
    with pytest.raises(ConfigError, match="does not belong"):
        create_app(parse_config(doc))
    doc["issuer"] = {
        "signing_keys": [
            {"key_file": str(tmp_path / "nope"), "certificate_file": str(one.cert_file)}
        ]
    }
    with pytest.raises(ConfigError, match="cannot read"):
        create_app(parse_config(doc))
    doc["issuer"] = issuer_section([one, two])
    create_app(parse_config(doc))
