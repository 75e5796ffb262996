"""The demo IdP's Responses pass the broker's own SamlVerifier; the demo issuer's tokens its OidcVerifier."""

from __future__ import annotations

import base64
import datetime as dt
import re
import time
import zlib
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from lxml import etree

from broker.config import Config, OidcIdp, SamlIdp, ServerSettings, parse_config
from broker.errors import BrokerError
from broker.mapping import map_roles
from broker.oidc.jwks import JwksCache
from broker.oidc.verify import OidcVerifier
from broker.saml.authn import start_login
from broker.saml.settings import SamlIdpRuntime, load_idps, sp_endpoints
from broker.saml.verify import SamlVerifier
from broker.store import MemoryStore
from broker_demo.idp import USERS, DemoIdp, DemoUser, role_pair
from broker_demo.issuer import DemoIssuer
from broker_demo.run import demo_config, run_demo

pytestmark = pytest.mark.anyio
SP = sp_endpoints(ServerSettings(base_url="http://127.0.0.1:8080"))
IDP_URL = "http://127.0.0.1:9001"
ISSUER = "http://127.0.0.1:9002"
NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
FIELD = re.compile(r'name="(\w+)" value="([^"]*)"')


@pytest.fixture(scope="module")
def idp() -> DemoIdp:
    return DemoIdp(base_url=IDP_URL, acs_url=SP.acs_url)


async def runtimes(idp: DemoIdp) -> dict[str, SamlIdpRuntime]:
    """What `broker demo` configures: entity_id, sso_url and the generated certificate."""
    conf = SamlIdp(
        type="saml", entity_id=idp.entity_id, sso_url=idp.sso_url, certificates=[idp.cert_pem]
    )
    async with httpx.AsyncClient() as http:
        return await load_idps({"demo-idp": conf}, SP, http)


async def verifier(idp: DemoIdp, store: MemoryStore) -> SamlVerifier:
    return SamlVerifier(await runtimes(idp), SP, partition="aws", store=store)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def b64(xml: bytes) -> str:
    return base64.b64encode(xml).decode()


def form_fields(html: str) -> dict[str, str]:
    return {k: unescape(v) for k, v in FIELD.findall(html)}


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
async def test_each_demo_user_verifies(idp: DemoIdp, user: DemoUser) -> None:
    v = await verifier(idp, MemoryStore())
    identity = await v.verify(b64(idp.response(user)), now=now())
    assert identity.subject == user.email
    assert identity.session_name == user.email
    assert identity.session_duration == 3600
    assert identity.attributes["groups"] == list(user.groups)
    pairs = [f"{r.role_arn},{r.principal_arn}" for r in identity.signed_roles]
    assert pairs == [role_pair(a, r) for a, r in user.roles]
    assert all(p.endswith(":saml-provider/demo-idp") for p in pairs)
    remaining = (identity.expires_at - now()).total_seconds()
    assert 240 < remaining <= 300


async def test_signed_shape_is_what_aws_and_the_broker_expect(idp: DemoIdp) -> None:
    first, second = (etree.fromstring(idp.response(USERS[0])) for _ in range(2))
    assertion = first.find("saml:Assertion", NS)
    assert assertion is not None
    for element in (first, assertion):
        sig = element.find("ds:Signature", NS)
        assert sig is not None, "both the Response and the Assertion are signed"
        algs = [m.get("Algorithm") for m in sig.iter() if m.get("Algorithm")]
        assert "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" in algs
        assert "http://www.w3.org/2001/10/xml-exc-c14n#" in algs
        assert not any("sha1" in str(a) for a in algs)
    assert first.get("Destination") == SP.acs_url
    scd = assertion.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS)
    assert scd is not None
    assert scd.get("Recipient") == SP.acs_url
    audience = assertion.findtext(
        "saml:Conditions/saml:AudienceRestriction/saml:Audience", None, NS
    )
    assert audience == "https://signin.aws.amazon.com/saml"
    ids = {e.get("ID") for e in (first, assertion)}
    second_assertion = second.find("saml:Assertion", NS)
    assert second_assertion is not None
    ids |= {e.get("ID") for e in (second, second_assertion)}
    assert len(ids) == 4, "every Response and Assertion gets a fresh ID"


async def test_a_tampered_response_is_refused(idp: DemoIdp) -> None:
    xml = idp.response(USERS[1]).replace(b"Developer", b"Admin")
    with pytest.raises(BrokerError) as caught:
        await (await verifier(idp, MemoryStore())).verify(b64(xml), now=now())
    assert caught.value.code == "InvalidSignature"


async def test_a_response_is_refused_once_replayed_and_after_five_minutes(idp: DemoIdp) -> None:
    v = await verifier(idp, MemoryStore())
    encoded = b64(idp.response(USERS[2]))
    await v.verify(encoded, now=now())
    with pytest.raises(BrokerError) as replay:
        await v.verify(encoded, now=now())
    assert replay.value.code == "ReplayDetected"
    old = b64(idp.response(USERS[2], now=now() - dt.timedelta(minutes=7)))
    with pytest.raises(BrokerError) as late:
        await v.verify(old, now=now())
    # python3-saml sees the lapsed SubjectConfirmationData first and names that.
    assert late.value.code in {"TokenExpired", "InvalidSubjectConfirmation"}


async def test_sp_initiated_answers_the_request(idp: DemoIdp) -> None:
    """The broker's own AuthnRequest, through /sso and /signin, back with InResponseTo."""
    store = MemoryStore()
    v = await verifier(idp, store)
    (runtime,) = (await runtimes(idp)).values()
    login = start_login(runtime, SP, relay_state="relay123", now=now())
    url = login.url
    transport = httpx.ASGITransport(app=idp.app)
    async with httpx.AsyncClient(transport=transport, base_url=IDP_URL) as client:
        page = await client.get(urlsplit(url).path + "?" + urlsplit(url).query)
        assert page.status_code == 200
        assert "Demo identity provider — not a real IdP" in page.text
        fields = form_fields(page.text)
        request_id = fields["in_response_to"]
        found = re.search(r'ID="([^"]+)"', _inflate(url))
        assert found is not None
        assert request_id == found.group(1)
        assert fields["relay_state"] == "relay123"
        posted = await client.post("/signin", data={**fields, "user": "carol"})
    assert posted.status_code == 200
    assert f'action="{SP.acs_url}"' in posted.text
    answer = form_fields(posted.text)
    assert answer["RelayState"] == "relay123"
    started = {request_id: runtime.name}
    identity = await v.verify(answer["SAMLResponse"], now=now(), started=started)
    assert identity.subject == "carol@example.com"
    assert await store.get(f"saml-request-used:{request_id}") is not None, "request consumed"


def _inflate(url: str) -> str:
    encoded = parse_qs(urlsplit(url).query)["SAMLRequest"][0]
    return zlib.decompress(base64.b64decode(encoded), -15).decode()


def _redirect_query(xml: bytes, **extra: str) -> dict[str, str]:
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    return {"SAMLRequest": b64(deflater.compress(xml) + deflater.flush()), **extra}


BAD_SSO = {
    "missing": {},
    "not-base64": {"SAMLRequest": "%%%"},
    "not-deflate": {"SAMLRequest": b64(b"<AuthnRequest/>")},
    "deflate-bomb": _redirect_query(b"<a>" + b" " * 2_000_000 + b"</a>"),
    "other-acs": _redirect_query(
        b'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a1" '
        b'AssertionConsumerServiceURL="https://evil.example/acs"/>'
    ),
    "not-authn-request": _redirect_query(
        b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a1"/>'
    ),
    "long-relay-state": _redirect_query(
        b'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a1"/>',
        RelayState="x" * 81,
    ),
}


@pytest.mark.parametrize("case", BAD_SSO.values(), ids=BAD_SSO.keys())
async def test_bad_sso_requests_get_a_bannered_400(idp: DemoIdp, case: dict[str, str]) -> None:
    transport = httpx.ASGITransport(app=idp.app)
    async with httpx.AsyncClient(transport=transport, base_url=IDP_URL) as client:
        page = await client.get("/sso", params=case)
    assert page.status_code == 400
    assert "Demo identity provider — not a real IdP" in page.text


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("GET", "/", None),
        ("GET", "/nowhere", None),
        ("POST", "/signin", {"user": "mallory"}),
        ("POST", "/signin", {"user": "alice", "in_response_to": '"><script>'}),
    ],
)
async def test_every_idp_page_says_it_is_not_a_real_idp(
    idp: DemoIdp, method: str, path: str, data: dict[str, str] | None
) -> None:
    transport = httpx.ASGITransport(app=idp.app)
    async with httpx.AsyncClient(transport=transport, base_url=IDP_URL) as client:
        page = await client.request(method, path, data=data)
    assert "Demo identity provider — not a real IdP" in page.text
    assert '<script>"' not in page.text


async def test_issuer_tokens_verify_with_the_broker() -> None:
    issuer = DemoIssuer(issuer=ISSUER)
    conf = OidcIdp(
        type="oidc", issuer=ISSUER, audiences=["sts.amazonaws.com"], algorithms=["RS256"]
    )
    transport = httpx.ASGITransport(app=issuer.app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        minted = await http.post("/token", data={"subject": "demo"})
        assert minted.status_code == 200
        assert minted.headers["cache-control"] == "no-store"
        token = minted.text
        oidc = OidcVerifier({"demo-ci": conf}, {"demo-ci": JwksCache(conf, http)})
        identity = await oidc.verify(token, now=time.time())
        index = await http.get("/")
        bad = await http.post("/token", data={"subject": "a b"})
    assert (identity.idp, identity.subject) == ("demo-ci", "demo")
    assert identity.attributes["repository"] == "demo-org/app"
    assert identity.attributes["ref"] == "refs/heads/main"
    assert identity.attributes["aud"] == "sts.amazonaws.com"
    assert 500 < identity.expires_at.timestamp() - time.time() <= 600
    assert "Demo OIDC issuer — not a real IdP" in index.text
    assert bad.status_code == 400


async def test_issuer_keys_are_fresh_per_start() -> None:
    one, two = DemoIssuer(issuer=ISSUER), DemoIssuer(issuer=ISSUER)
    assert one.jwk()["n"] != two.jwk()["n"]
    assert "d" not in one.jwk(), "the JWKS carries the public key only"


def demo_config_for(idp: DemoIdp) -> Config:
    return parse_config(
        demo_config(
            base_url="http://127.0.0.1:8080",
            standin_url="http://127.0.0.1:9000",
            idp=idp,
            issuer_url=ISSUER,
            secret="s" * 32,
        )
    )


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
async def test_demo_rules_grant_exactly_what_the_idp_signs(idp: DemoIdp, user: DemoUser) -> None:
    """The picker shows each demo user every role the IdP signed for them, and no other."""
    config = demo_config_for(idp)
    identity = await (await verifier(idp, MemoryStore())).verify(b64(idp.response(user)), now=now())
    decision = map_roles(identity, config)
    assert sorted(g.arn for g in decision.grants) == sorted(
        f"arn:aws:iam::{a}:role/{r}" for a, r in user.roles
    )
    assert decision.refused == ()
    assert {g.account_name for g in decision.grants} <= {"Production", "Staging"}


async def test_demo_rules_grant_ci_to_main_only() -> None:
    issuer = DemoIssuer(issuer=ISSUER)
    config = demo_config_for(DemoIdp(base_url=IDP_URL, acs_url=SP.acs_url))
    conf = config.identity_providers["demo-ci"]
    assert isinstance(conf, OidcIdp)
    transport = httpx.ASGITransport(app=issuer.app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        oidc = OidcVerifier({"demo-ci": conf}, {"demo-ci": JwksCache(conf, http)})
        main = await oidc.verify(issuer.mint(), now=time.time())
        branch = await oidc.verify(issuer.mint(ref="refs/heads/feature"), now=time.time())
    assert [g.name for g in map_roles(main, config).grants] == ["ci-deploy"]
    assert map_roles(branch, config).grants == ()


def test_demo_binds_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        run_demo(host="0.0.0.0")  # noqa: S104 - the point of the test
