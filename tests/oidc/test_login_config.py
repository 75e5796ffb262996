"""An OIDC IdP that signs people in (`login: true`): its keys validated by name, the trust
policy and IAM provider that follow from it, and which front doors a config switches on."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytest

from broker.app import front_doors
from broker.browser.picker import BrowserFrontDoor
from broker.config import Config, OidcIdp, load_config, parse_config
from broker.errors import ConfigError
from broker.oidc.signin import OidcSignIn
from broker.saml.routes import SamlFrontDoor
from broker.setup.trust_policy import trust_policy
from tests.fakes.app import BASE_URL, NO_STS, in_process
from tests.fakes.saml_idp import make_keypair

pytestmark = pytest.mark.unit

ISSUER = "https://login.example.com"
ROLE = "arn:aws:iam::111122223333:role/people"


def config(idp: dict[str, Any], *, saml: bool = False) -> Config:
    idps: dict[str, Any] = {"corp": {"type": "oidc", "issuer": ISSUER, **idp}}
    if saml:
        idps["portal"] = {
            "type": "saml",
            "entity_id": "https://idp.example.com",
            "sso_url": "https://idp.example.com/sso",
            "certificates": ["MIIBfake"],
        }
    return parse_config(
        {
            "identity_providers": idps,
            "roles": {"people": {"arn": ROLE}},
            "rules": [{"name": "people", "idp": "corp", "grant": ["people"]}],
        }
    )


LOGIN = {"login": True, "client_id": "broker", "client_secret_file": "/run/secrets/oidc"}


def error(idp: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        config(idp)
    return caught.value.detail


def test_login_only_needs_no_audiences() -> None:
    idp = config(LOGIN).identity_providers["corp"]
    assert isinstance(idp, OidcIdp)
    assert idp.audiences == []
    assert idp.scopes == ["openid", "email", "profile"]
    assert idp.sts_audiences() == ["broker"]


def test_scopes_as_a_string_and_with_programs() -> None:
    idp = config({**LOGIN, "audiences": ["sts.amazonaws.com"], "scopes": "openid groups"})
    oidc = idp.identity_providers["corp"]
    assert isinstance(oidc, OidcIdp)
    assert oidc.scopes == ["openid", "groups"]
    assert oidc.sts_audiences() == ["sts.amazonaws.com", "broker"]


def test_private_key_jwt() -> None:
    idp = config(
        {
            "login": True,
            "client_id": "broker",
            "private_key_jwt": {"key_file": "/k.pem", "kid": "k1", "alg": "ES256"},
        }
    ).identity_providers["corp"]
    assert isinstance(idp, OidcIdp)
    assert idp.private_key_jwt is not None
    assert idp.private_key_jwt.alg == "ES256"


@dataclass(frozen=True)
class Bad:
    name: str
    idp: dict[str, Any]
    says: tuple[str, ...]


BAD = [
    Bad("no-audiences-no-login", {}, ("identity_providers.corp", "audiences", "login: true")),
    Bad(
        "login-without-client-id",
        {"login": True, "client_secret_file": "/s"},
        ("identity_providers.corp", "needs client_id"),
    ),
    Bad(
        "login-without-client-auth",
        {"login": True, "client_id": "b"},
        ("identity_providers.corp", "exactly one client authentication"),
    ),
    Bad(
        "login-with-two-client-auths",
        {**LOGIN, "private_key_jwt": {"key_file": "/k.pem"}},
        ("exactly one client authentication", "client_secret_file or private_key_jwt"),
    ),
    Bad(
        "secret-without-login",
        {"audiences": ["a"], "client_secret_file": "/s"},
        ("client_secret_file: only used with login: true",),
    ),
    Bad("scopes-without-openid", {**LOGIN, "scopes": ["email"]}, ("scopes", "openid")),
    Bad("scope-with-quote", {**LOGIN, "scopes": ["openid", 'a"b']}, ("scopes", "scope token")),
    Bad(
        "hmac-client-assertion",
        {"login": True, "client_id": "b", "private_key_jwt": {"key_file": "/k", "alg": "HS256"}},
        ("private_key_jwt.alg",),
    ),
    Bad(
        "unknown-key",
        {**LOGIN, "client_secret": "inline"},
        ("identity_providers.corp", "client_secret"),
    ),
    Bad("empty-label", {**LOGIN, "label": ""}, ("label",)),
]


@pytest.mark.parametrize("case", BAD, ids=attrgetter("name"))
def test_bad_login_config(case: Bad) -> None:
    detail = error(case.idp)
    for part in case.says:
        assert part in detail, detail


def test_trust_policy_names_the_client_id_as_audience() -> None:
    """Pass-through: the ID token goes to STS, and IAM checks its aud (the client ID)."""
    cfg = config({**LOGIN, "audiences": ["sts.amazonaws.com"]})
    document = trust_policy(cfg, "people", allow_any_subject=True).document
    (statement,) = document["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"]["StringEquals"]["login.example.com:aud"] == [
        "broker",
        "sts.amazonaws.com",
    ]
    login_only = trust_policy(config(LOGIN), "people", allow_any_subject=True).document
    assert json.dumps(login_only).count('"login.example.com:aud": "broker"') == 1


def test_front_doors_for_people() -> None:
    kinds = [type(d) for d in front_doors(config(LOGIN))]
    assert OidcSignIn in kinds
    assert BrowserFrontDoor in kinds
    assert SamlFrontDoor not in kinds
    both = [type(d) for d in front_doors(config(LOGIN, saml=True))]
    assert {OidcSignIn, SamlFrontDoor, BrowserFrontDoor} <= set(both)
    programs_only = [type(d) for d in front_doors(config({"audiences": ["a"]}))]
    assert BrowserFrontDoor not in programs_only
    assert OidcSignIn not in programs_only


def test_sign_in_methods_offer_the_label() -> None:
    door = OidcSignIn(landing=BrowserFrontDoor(), config=config({**LOGIN, "label": "Okta"}))
    (method,) = door.sign_in_methods()
    assert method.idp == "corp"
    assert method.label == "Okta"
    assert method.start_url("/x?y=1") == "/oidc/login?idp=corp&next=%2Fx%3Fy%3D1"


def test_login_example_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "oidc-login.example.yaml"
    cfg = load_config(example)
    logins = {n: i for n, i in cfg.identity_providers.items() if isinstance(i, OidcIdp)}
    assert {n for n, i in logins.items() if i.login} == {"entra", "okta"}
    assert logins["okta"].private_key_jwt is not None
    assert logins["okta"].scopes == ["openid", "email", "profile", "groups"]


def test_the_oidc_front_door_imports_no_other_front_door() -> None:
    """Front doors meet through http/frontdoor.py's SignInMethod and Landing only."""
    package = Path(__file__).resolve().parents[2] / "broker" / "oidc"
    offences = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offences += [
                f"{path.name}: {n}"
                for n in names
                if n.startswith(("broker.browser", "broker.saml"))
            ]
    assert not offences


@pytest.mark.anyio
async def test_signin_lists_saml_and_oidc_and_the_picker_sends_people_there(
    tmp_path: Path,
) -> None:
    """Both kinds of sign-in in one broker (the OIDC IdP is down: its button is still there,
    and starting a sign-in with it is a 503 with Retry-After, never a redirect elsewhere)."""
    key = make_keypair(tmp_path, "idp")
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    cfg = parse_config(
        {
            "server": {"base_url": BASE_URL},
            "aws": {"sts_endpoint": NO_STS, "sts_max_attempts": 1},
            "audit": {"path": str(tmp_path / "audit.jsonl")},
            "identity_providers": {
                "portal": {
                    "type": "saml",
                    "entity_id": "https://idp.example.com/saml",
                    "sso_url": "https://idp.example.com/sso",
                    "certificates": [key.cert_pem],
                },
                "corp": {
                    "type": "oidc",
                    "issuer": "http://127.0.0.1:9",
                    "login": True,
                    "label": "Corp (OIDC)",
                    "client_id": "broker",
                    "client_secret_file": str(secret),
                    "http_timeout_seconds": 1,
                },
            },
            "roles": {"people": {"arn": ROLE}},
            "rules": [{"name": "people", "idp": "*", "grant": ["people"]}],
        }
    )
    async with in_process(cfg) as broker:
        picker = await broker.client.get("/", headers={"accept": "text/html"})
        assert picker.status_code == 303
        assert picker.headers["location"] == "/signin?next=%2F"
        chooser = await broker.client.get("/signin", params={"next": "/"})
        assert "Corp (OIDC)" in chooser.text
        assert "/oidc/login?idp=corp&amp;next=%2F" in chooser.text
        assert "/saml/login?idp=portal&amp;next=%2F" in chooser.text
        down = await broker.client.get("/oidc/login", params={"idp": "corp"})
        assert down.status_code == 503
        assert down.json()["code"] == "IdpUnavailable"
        assert "retry-after" in down.headers
