"""SamlVerifier against responses signed by pysaml2 + xmlsec1: named bad inputs, then good ones."""

from __future__ import annotations

import datetime as dt
from operator import attrgetter
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from broker.config import SamlIdp, ServerSettings
from broker.errors import BrokerError
from broker.identity import SamlAssertion, SignedRole
from broker.saml.authn import start_login
from broker.saml.metadata import sp_metadata
from broker.saml.settings import SpEndpoints, load_idps, sp_endpoints
from broker.saml.verify import SamlVerifier
from broker.store import MemoryStore
from tests.fakes.saml_cases import CASES, SP, Case, build
from tests.fakes.saml_edits import SCD, now, set_attr, stamp
from tests.fakes.saml_idp import AWS, PROVIDER_ARN, ROLE_ARN, SHA1, TestIdp


class RecordingStore(MemoryStore):
    """A MemoryStore that remembers which replay-cache keys were ever added."""

    def __init__(self) -> None:
        super().__init__()
        self.added: list[str] = []

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        self.added.append(key)
        return await super().add(key, value, ttl)


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> TestIdp:
    return TestIdp(tmp_path_factory.mktemp("idp"), acs_url=SP.acs_url, sp_metadata=sp_metadata(SP))


async def verifier(
    idp: TestIdp, store: MemoryStore, sp: SpEndpoints = SP, **cfg: Any
) -> SamlVerifier:
    conf = SamlIdp(
        type="saml",
        entity_id=idp.entity_id,
        sso_url=idp.sso_url,
        certificates=[idp.key.cert_pem],
        **cfg,
    )
    async with httpx.AsyncClient() as http:
        runtimes = await load_idps({"corp": conf}, sp, http)
    return SamlVerifier(runtimes, sp, partition="aws", store=store)


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=attrgetter("name"))
async def test_refused(idp: TestIdp, case: Case) -> None:
    store = RecordingStore()
    v = await verifier(idp, store, **case.config)
    form_value = build(idp, case)
    with pytest.raises(BrokerError) as info:
        await v.verify(form_value, now=now() + case.shift)
    err = info.value
    assert err.code == case.code, (err.code, err.log_detail)
    assert case.reason in (err.log_detail or ""), err.log_detail
    assert 400 <= err.status < 500
    # Nothing was accepted: no assertion reached the replay cache.
    assert store.added == []
    # The client-facing sentence never echoes assertion content.
    assert "example.com" not in err.detail
    assert "arn:" not in err.detail


@pytest.mark.anyio
async def test_replay_is_refused(idp: TestIdp) -> None:
    v = await verifier(idp, MemoryStore())
    form_value = idp.b64()
    await v.verify(form_value, now=now())
    with pytest.raises(BrokerError) as info:
        await v.verify(form_value, now=now())
    assert info.value.code == "ReplayDetected"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "shape",
    [{}, {"sign_response": False}, {"sign_assertion": False}],
    ids=["response_and_assertion_signed", "assertion_signed", "response_signed"],
)
async def test_valid_shapes(idp: TestIdp, shape: dict[str, bool]) -> None:
    form_value = idp.b64(**shape)
    identity = await (await verifier(idp, MemoryStore())).verify(form_value, now=now())
    assert identity.protocol == "saml"
    assert identity.idp == "corp"
    assert identity.issuer == idp.entity_id
    assert identity.subject == "alice@example.com"
    assert isinstance(identity.proof, SamlAssertion)
    assert identity.proof.response == form_value
    assert identity.signed_roles == (SignedRole(ROLE_ARN, PROVIDER_ARN),)
    assert identity.session_name == "alice@example.com"
    assert identity.session_duration is None
    assert now() < identity.expires_at <= now() + dt.timedelta(minutes=5)


@pytest.mark.anyio
async def test_sha1_accepted_with_allow_sha1(
    idp: TestIdp, caplog: pytest.LogCaptureFixture
) -> None:
    v = await verifier(idp, MemoryStore(), allow_sha1=True)
    identity = await v.verify(idp.b64(algorithms=SHA1), now=now())
    assert identity.subject == "alice@example.com"
    assert "SHA-1" in caplog.text


@pytest.mark.anyio
async def test_roles_either_order_with_whitespace(idp: TestIdp) -> None:
    other = ROLE_ARN.replace("Developer", "path/Admin")
    form_value = idp.b64(roles=[f" {ROLE_ARN} , {PROVIDER_ARN} ", f"{PROVIDER_ARN},{other}"])
    identity = await (await verifier(idp, MemoryStore())).verify(form_value, now=now())
    assert identity.signed_roles == (
        SignedRole(ROLE_ARN, PROVIDER_ARN),
        SignedRole(other, PROVIDER_ARN),
    )


@pytest.mark.anyio
async def test_session_attributes(idp: TestIdp) -> None:
    session_end = (now() + dt.timedelta(hours=2)).replace(microsecond=0)
    form_value = idp.b64(
        attributes={
            AWS + "RoleSessionName": ["alice.smith@example.com"],
            AWS + "SessionDuration": ["7200"],
            AWS + "PrincipalTag:team": ["platform"],
            AWS + "TransitiveTagKeys": ["team"],
            AWS + "SourceIdentity": ["alice"],
        },
        before_sign=set_attr(
            "saml:Assertion/saml:AuthnStatement", "SessionNotOnOrAfter", stamp(session_end)
        ),
    )
    identity = await (await verifier(idp, MemoryStore())).verify(form_value, now=now())
    assert identity.session_name == "alice.smith@example.com"
    assert identity.session_duration == 7200
    assert identity.session_not_on_or_after == session_end
    assert identity.attributes[AWS + "PrincipalTag:team"] == ["platform"]
    assert identity.attributes[AWS + "SourceIdentity"] == ["alice"]


@pytest.mark.anyio
async def test_expires_at_is_the_earliest_bound(idp: TestIdp) -> None:
    soon = (now() + dt.timedelta(minutes=2)).replace(microsecond=0)
    form_value = idp.b64(before_sign=set_attr(SCD, "NotOnOrAfter", stamp(soon)))
    identity = await (await verifier(idp, MemoryStore())).verify(form_value, now=now())
    assert identity.expires_at == soon


@pytest.mark.anyio
async def test_sp_initiated_login_round_trip(idp: TestIdp) -> None:
    """start_login -> pysaml2 parses our AuthnRequest -> answers it -> verify takes the answer
    from the browser that started it, once."""
    store = MemoryStore()
    v = await verifier(idp, store, idp_initiated=False)
    runtime = next(iter(v._by_entity.values()))
    login = start_login(runtime, SP, relay_state="abc", now=now())
    assert login.url.startswith(idp.sso_url + "?SAMLRequest=")
    assert login.url.endswith("&RelayState=abc")
    request_id = idp.request_id(login.url)
    assert request_id == login.request_id
    started = {request_id: runtime.name}
    identity, answered = await v.verify_sign_in(
        idp.b64(in_response_to=request_id), now=now(), started=started
    )
    assert identity.subject == "alice@example.com"
    assert answered == request_id
    # The request ID is single use: a second answer to it is refused.
    with pytest.raises(BrokerError) as info:
        await v.verify(idp.b64(in_response_to=request_id), now=now(), started=started)
    assert info.value.code == "UnknownInResponseTo"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("started", "code"),
    [
        ({}, "SignInNotStartedHere"),
        ({"_another-request": "corp"}, "SignInNotStartedHere"),
        (None, "UnknownInResponseTo"),
    ],
    ids=["browser-started-none", "browser-started-another", "no-browser"],
)
async def test_an_answer_to_a_request_this_caller_did_not_start(
    idp: TestIdp, started: dict[str, str] | None, code: str
) -> None:
    """Login CSRF: the response answers an AuthnRequest, but not one this browser started."""
    store = MemoryStore()
    v = await verifier(idp, store, idp_initiated=False)
    runtime = next(iter(v._by_entity.values()))
    login = start_login(runtime, SP, now=now())
    with pytest.raises(BrokerError) as info:
        await v.verify(idp.b64(in_response_to=login.request_id), now=now(), started=started)
    assert info.value.code == code
    assert await store.get(f"saml-request-used:{login.request_id}") is None


@pytest.mark.anyio
async def test_a_request_sent_to_another_idp(idp: TestIdp) -> None:
    v = await verifier(idp, MemoryStore())
    runtime = next(iter(v._by_entity.values()))
    login = start_login(runtime, SP, now=now())
    with pytest.raises(BrokerError) as info:
        await v.verify(
            idp.b64(in_response_to=login.request_id),
            now=now(),
            started={login.request_id: "another-idp"},
        )
    assert info.value.code == "UnknownInResponseTo"


@pytest.mark.anyio
async def test_metadata_file_source(idp: TestIdp, tmp_path: Path) -> None:
    path = tmp_path / "idp.xml"
    path.write_text(idp.metadata())
    conf = SamlIdp(type="saml", metadata_file=path)
    async with httpx.AsyncClient() as http:
        runtimes = await load_idps({"corp": conf}, SP, http)
    assert runtimes["corp"].entity_id == idp.entity_id
    assert runtimes["corp"].sso_url == idp.sso_url
    v = SamlVerifier(runtimes, SP, partition="aws", store=MemoryStore())
    assert (await v.verify(idp.b64(), now=now())).subject == "alice@example.com"


def test_sp_metadata_is_schema_valid() -> None:
    import onelogin.saml2

    schemas = Path(onelogin.saml2.__file__).parent / "schemas"
    schema = etree.XMLSchema(etree.parse(schemas / "saml-schema-metadata-2.0.xsd"))
    doc = etree.fromstring(sp_metadata(SP).encode())
    assert schema.validate(doc)
    acs = doc.find(".//{urn:oasis:names:tc:SAML:2.0:metadata}AssertionConsumerService")
    assert acs is not None
    assert acs.get("Location") == "https://broker.example.test/saml/acs"
    assert doc.get("entityID") == "https://broker.example.test/saml/metadata"


def test_endpoints_come_from_base_url_only() -> None:
    sp = sp_endpoints(ServerSettings(base_url="https://sso.example.test/"))
    assert sp == SpEndpoints(
        "https://sso.example.test/saml/metadata", "https://sso.example.test/saml/acs"
    )
