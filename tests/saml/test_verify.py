"""SamlVerifier against responses signed by pysaml2 + xmlsec1: named bad inputs, then good ones."""

from __future__ import annotations

import copy
import datetime as dt
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
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
from tests.saml.idp import AWS, NS, PROVIDER_ARN, ROLE_ARN, SHA1, TestIdp, encode

SP = sp_endpoints(ServerSettings(base_url="https://broker.example.test"))
ROLE_PAIR = f"{ROLE_ARN},{PROVIDER_ARN}"
Edit = Callable[[etree._Element], None]


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


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- edits applied to pysaml2's response, before or after it is signed ----------------------


def find(root: etree._Element, path: str) -> etree._Element:
    node = root.find(path, NS)
    assert node is not None, path
    return node


def assertion(root: etree._Element) -> etree._Element:
    return find(root, "saml:Assertion")


def scd(root: etree._Element) -> etree._Element:
    return find(
        root, "saml:Assertion/saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"
    )


def set_attr(path: str, name: str, value: str | None) -> Edit:
    def edit(root: etree._Element) -> None:
        node = root if path == "." else find(root, path)
        if value is None:
            node.attrib.pop(name, None)
        else:
            node.set(name, value)

    return edit


SCD = "saml:Assertion/saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"
NAME_ID = "saml:Assertion/saml:Subject/saml:NameID"


def remove(path: str) -> Edit:
    def edit(root: etree._Element) -> None:
        node = find(root, path)
        parent = node.getparent()
        assert parent is not None
        parent.remove(node)

    return edit


def all_times(delta: dt.timedelta) -> Edit:
    """Shift every validity bound of the assertion by `delta` from now."""

    def edit(root: etree._Element) -> None:
        base = now() + delta
        cond = find(root, "saml:Assertion/saml:Conditions")
        cond.set("NotBefore", stamp(base - dt.timedelta(minutes=5)))
        cond.set("NotOnOrAfter", stamp(base))
        scd(root).set("NotOnOrAfter", stamp(base))

    return edit


def comment_in(path: str, text: str, split: int) -> Edit:
    """Sign AFTER inserting a comment into the text: c14n drops it, so the signature holds."""

    def edit(root: etree._Element) -> None:
        node = root if path == "." else find(root, path)
        node.text = text[:split]
        comment = etree.Comment("")
        comment.tail = text[split:]
        node.append(comment)

    return edit


def role_value_comment(root: etree._Element) -> None:
    value = find(root, "saml:Assertion/saml:AttributeStatement/saml:Attribute/saml:AttributeValue")
    comment_in(".", value.text or "", 20)(value)


def evil(node: etree._Element, new_id: str = "evil-id") -> etree._Element:
    """A copy of `node` with a new ID, NameID rewritten, and no ds:Signature."""
    clone = copy.deepcopy(node)
    clone.set("ID", new_id)
    for sig in clone.findall("ds:Signature", NS):
        clone.remove(sig)
    for name_id in clone.iter(f"{{{NS['saml']}}}NameID"):
        name_id.text = "admin@example.com"
    return clone


def strip_signature(node: etree._Element) -> etree._Element:
    clone = copy.deepcopy(node)
    for sig in clone.findall("ds:Signature", NS):
        clone.remove(sig)
    return clone


# The classic XML Signature Wrapping taxonomy (Somorovsky et al., "On Breaking SAML", 2012,
# as numbered by SAML Raider): each moves or clones the signed element so that a verifier
# checks one element and reads another.


def xsw1(root: etree._Element) -> None:
    """Response signed: an evil Response (new ID) carries the Signature; the original signed
    Response is moved inside that Signature, where its Reference still finds it."""
    sig = find(root, "ds:Signature")
    original = strip_signature(root)
    bad = evil(original, "evil-response")
    for child in list(root):
        root.remove(child)
    root.attrib.update(bad.attrib)
    for child in bad:
        root.append(child)
    root.insert(1, sig)
    sig.append(original)


def xsw2(root: etree._Element) -> None:
    """Response signed: as XSW1, but the original Response is a detached sibling before it."""
    xsw1(root)
    sig = find(root, "ds:Signature")
    original = sig[-1]
    sig.remove(original)
    root.insert(list(root).index(sig), original)


def xsw3(root: etree._Element) -> None:
    """Assertion signed: an evil Assertion is inserted before the signed one."""
    signed = assertion(root)
    root.insert(list(root).index(signed), evil(signed))


def xsw4(root: etree._Element) -> None:
    """Assertion signed: the evil Assertion replaces it and wraps the signed one."""
    signed = assertion(root)
    bad = evil(signed)
    root.replace(signed, bad)
    bad.append(signed)


def xsw5(root: etree._Element) -> None:
    """Assertion signed: values changed in place, an unsigned original copy appended last."""
    signed = assertion(root)
    root.append(strip_signature(signed))
    find(signed, "saml:Subject/saml:NameID").text = "admin@example.com"


def xsw6(root: etree._Element) -> None:
    """Assertion signed: values changed in place, the original copy inside the Signature."""
    signed = assertion(root)
    original = strip_signature(signed)
    find(signed, "saml:Subject/saml:NameID").text = "admin@example.com"
    find(signed, "ds:Signature").append(original)


def xsw7(root: etree._Element) -> None:
    """Assertion signed: the signed original is moved into samlp:Extensions, an evil one read."""
    signed = assertion(root)
    ext = etree.Element(f"{{{NS['samlp']}}}Extensions")
    root.replace(signed, evil(signed))
    ext.append(signed)
    root.insert(1, ext)


def xsw8(root: etree._Element) -> None:
    """Assertion signed: values changed, the original copy inside a ds:Object of the Signature."""
    signed = assertion(root)
    original = strip_signature(signed)
    find(signed, "saml:Subject/saml:NameID").text = "admin@example.com"
    obj = etree.SubElement(find(signed, "ds:Signature"), f"{{{NS['ds']}}}Object")
    obj.append(original)


def moved_assertion(root: etree._Element) -> None:
    """Response signed, one Assertion only, but not where the profile puts it."""
    signed = assertion(root)
    ext = etree.Element(f"{{{NS['samlp']}}}Extensions")
    root.remove(signed)
    ext.append(signed)
    root.insert(2, ext)


def xslt_transform(root: etree._Element) -> None:
    transforms = find(root, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms")
    xslt = etree.SubElement(transforms, f"{{{NS['ds']}}}Transform")
    xslt.set("Algorithm", "http://www.w3.org/TR/1999/REC-xslt-19991116")
    etree.SubElement(xslt, "{http://www.w3.org/1999/XSL/Transform}stylesheet").set("version", "1.0")


def two_confirmations(root: etree._Element) -> None:
    good = find(root, "saml:Assertion/saml:Subject/saml:SubjectConfirmation")
    bad = copy.deepcopy(good)
    bad[0].set("Recipient", "https://evil.example.test/saml/acs")
    good.addnext(bad)


def two_assertions(root: etree._Element) -> None:
    signed = assertion(root)
    signed.addnext(evil(signed))


def element_in_role(root: etree._Element) -> None:
    value = find(root, "saml:Assertion/saml:AttributeStatement/saml:Attribute/saml:AttributeValue")
    # Without xsi:type the value is xs:anyType, so the schema lets an element through.
    value.attrib.pop("{http://www.w3.org/2001/XMLSchema-instance}type")
    child = etree.SubElement(value, "x")
    child.tail = ",ignored"


def swap_issuer(root: etree._Element) -> None:
    for issuer in root.iter(f"{{{NS['saml']}}}Issuer"):
        issuer.text = "https://other-idp.example.test"


def tamper_name_id(root: etree._Element) -> None:
    find(root, NAME_ID).text = "admin@example.com"


def drop_key_info(root: etree._Element) -> None:
    for key_info in root.iter(f"{{{NS['ds']}}}KeyInfo"):
        parent = key_info.getparent()
        assert parent is not None
        parent.remove(key_info)


# ---- raw inputs -----------------------------------------------------------------------------

DOCTYPE_XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="a" Version="2.0">&x;</samlp:Response>"""
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b']><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol9;</samlp:Response>'
)


def raw_deflate(xml: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(xml) + c.flush()


@dataclass(frozen=True)
class Case:
    name: str
    code: str
    reason: str  # a stable fragment of log_detail
    response: dict[str, Any] = field(default_factory=dict)  # TestIdp.response kwargs
    raw: Callable[[bytes], str] | None = None  # build the form value from a good response
    config: dict[str, Any] = field(default_factory=dict)
    shift: dt.timedelta = dt.timedelta(0)  # added to `now` for the verifier


AS_ONLY = {"sign_response": False}
RESP_ONLY = {"sign_assertion": False}
HOUR = dt.timedelta(hours=1)

CASES = [
    # XML signature wrapping, built from valid signed responses.
    Case(
        "xsw1",
        "InvalidAssertion",
        "assertion count",
        {**RESP_ONLY, "after_sign": xsw1},
    ),
    Case(
        "xsw2",
        "InvalidAssertion",
        "assertion count",
        {**RESP_ONLY, "after_sign": xsw2},
    ),
    Case("xsw3", "InvalidAssertion", "assertion count", {**AS_ONLY, "after_sign": xsw3}),
    Case("xsw4", "InvalidAssertion", "assertion count", {**AS_ONLY, "after_sign": xsw4}),
    Case("xsw5", "InvalidAssertion", "assertion count", {**AS_ONLY, "after_sign": xsw5}),
    Case("xsw6", "InvalidAssertion", "assertion count", {**AS_ONLY, "after_sign": xsw6}),
    Case("xsw7", "InvalidAssertion", "assertion count", {**AS_ONLY, "after_sign": xsw7}),
    Case("xsw8", "InvalidAssertion", "assertion count", {**AS_ONLY, "after_sign": xsw8}),
    Case(
        "assertion_moved_into_extensions",
        "InvalidAssertion",
        "not a direct child",
        {**RESP_ONLY, "after_sign": moved_assertion},
    ),
    Case(
        "reference_to_other_id",
        "InvalidAssertion",
        "Reference",
        {
            "after_sign": set_attr(
                "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference", "URI", "#other"
            )
        },
    ),
    Case(
        "duplicate_ids",
        "InvalidAssertion",
        "duplicate ID",
        {**AS_ONLY, "after_sign": lambda r: r.set("ID", assertion(r).get("ID") or "")},
    ),
    # Comments inside signed text: c14n ignores them, so the signature is valid.
    Case(
        "comment_in_name_id",
        "InvalidAssertion",
        "comment",
        {
            "name_id": "user@user.com.evil.com",
            "before_sign": comment_in(NAME_ID, "user@user.com.evil.com", 13),
        },
    ),
    Case(
        "comment_in_role_value", "InvalidAssertion", "comment", {"before_sign": role_value_comment}
    ),
    # Signatures and keys.
    Case(
        "unsigned",
        "InvalidSignature",
        "NO_SIGNATURE_FOUND",
        {"sign_response": False, "sign_assertion": False},
    ),
    Case(
        "tampered_after_signing",
        "InvalidSignature",
        "INVALID_SIGNATURE",
        {"after_sign": tamper_name_id},
    ),
    Case(
        "signed_by_another_key",
        "InvalidSignature",
        "INVALID_SIGNATURE",
        {"signer": "other", "after_sign": drop_key_info},
    ),
    Case(
        "configured_cert_other_key",
        "InvalidSignature",
        "INVALID_SIGNATURE",
        {"signer": "other", "embed_cert": "idp"},
    ),
    Case("foreign_cert_in_key_info", "UnknownSigningKey", "KeyInfo", {"signer": "other"}),
    Case("sha1", "AlgorithmNotAllowed", "SHA-1", {"algorithms": SHA1}),
    Case(
        "xslt_transform",
        "AlgorithmNotAllowed",
        "Transform",
        {**AS_ONLY, "after_sign": xslt_transform},
    ),
    # Time.
    Case("expired", "TokenExpired", "ASSERTION_EXPIRED", {"before_sign": all_times(-HOUR)}),
    Case("expired_by_our_clock", "TokenExpired", "NotOnOrAfter", shift=HOUR),
    Case(
        "not_yet_valid",
        "TokenNotYetValid",
        "ASSERTION_TOO_EARLY",
        {"before_sign": all_times(3 * HOUR)},
    ),
    Case("issued_in_the_future_by_our_clock", "TokenNotYetValid", "IssueInstant", shift=-HOUR),
    Case(
        "session_not_on_or_after_passed",
        "SessionExpired",
        "SESSION_EXPIRED",
        {
            "before_sign": set_attr(
                "saml:Assertion/saml:AuthnStatement", "SessionNotOnOrAfter", "2001-01-01T00:00:00Z"
            )
        },
    ),
    # Audience, Destination, Recipient, SubjectConfirmation.
    Case(
        "wrong_audience",
        "InvalidAudience",
        "no configured audience",
        {
            "before_sign": lambda r: setattr(
                find(r, "saml:Assertion/saml:Conditions/saml:AudienceRestriction/saml:Audience"),
                "text",
                "https://evil.example.test",
            )
        },
    ),
    Case(
        "missing_audience_restriction",
        "InvalidAudience",
        "no AudienceRestriction",
        {"before_sign": remove("saml:Assertion/saml:Conditions/saml:AudienceRestriction")},
    ),
    Case(
        "wrong_recipient",
        "InvalidSubjectConfirmation",
        "WRONG_SUBJECTCONFIRMATION",
        {"before_sign": set_attr(SCD, "Recipient", "https://evil.example.test/saml/acs")},
    ),
    Case(
        "missing_recipient",
        "InvalidRecipient",
        "Recipient missing",
        {"before_sign": set_attr(SCD, "Recipient", None)},
    ),
    Case(
        "recipient_only_contains_ours",
        "InvalidRecipient",
        "not our ACS URL",
        {
            "before_sign": set_attr(
                SCD, "Recipient", "https://evil.example.test/?next=" + SP.acs_url
            )
        },
    ),
    Case(
        "wrong_destination",
        "InvalidDestination",
        "WRONG_DESTINATION",
        {"before_sign": set_attr(".", "Destination", "https://evil.example.test/saml/acs")},
    ),
    Case(
        "missing_destination",
        "InvalidDestination",
        "Destination missing",
        {"before_sign": set_attr(".", "Destination", None)},
    ),
    Case(
        "prefix_only_destination",
        "InvalidDestination",
        "not our ACS URL",
        {"before_sign": set_attr(".", "Destination", SP.acs_url + "/../evil")},
    ),
    Case(
        "missing_scd_not_on_or_after",
        "InvalidSubjectConfirmation",
        "NotOnOrAfter missing",
        {"before_sign": set_attr(SCD, "NotOnOrAfter", None)},
    ),
    Case(
        "scd_not_before",
        "InvalidSubjectConfirmation",
        "NotBefore",
        {"before_sign": set_attr(SCD, "NotBefore", "2001-01-01T00:00:00Z")},
    ),
    Case(
        "two_subject_confirmations_one_bad",
        "InvalidSubjectConfirmation",
        "2 SubjectConfirmation",
        {"before_sign": two_confirmations},
    ),
    Case(
        "two_assertions",
        "InvalidAssertion",
        "assertion count",
        {**RESP_ONLY, "before_sign": two_assertions},
    ),
    Case("unknown_issuer", "UnknownIssuer", "not configured", {"before_sign": swap_issuer}),
    # InResponseTo and unsolicited responses.
    Case(
        "unknown_in_response_to",
        "UnknownInResponseTo",
        "InResponseTo unknown",
        {"in_response_to": "_never-sent"},
    ),
    Case(
        "unsolicited_when_idp_initiated_false",
        "UnsolicitedResponse",
        "unsolicited",
        config={"idp_initiated": False},
    ),
    # Unsafe or malformed bytes.
    Case("doctype_xxe", "MalformedRequest", "DOCTYPE", raw=lambda _: encode(DOCTYPE_XXE)),
    Case("billion_laughs", "MalformedRequest", "", raw=lambda _: encode(LAUGHS)),
    Case(
        "oversized_5mb", "RequestTooLarge", "length", raw=lambda _: encode(b"<" * (5 * 1024 * 1024))
    ),
    Case("non_base64", "MalformedRequest", "base64", raw=lambda _: "this is %% not base64!"),
    Case("non_xml", "MalformedRequest", "well-formed", raw=lambda _: encode(b"hello, world")),
    Case(
        "truncated_xml",
        "MalformedRequest",
        "well-formed",
        raw=lambda xml: encode(xml[: len(xml) // 2]),
    ),
    Case(
        "raw_deflated", "MalformedRequest", "well-formed", raw=lambda xml: encode(raw_deflate(xml))
    ),
    # AWS attributes.
    Case("no_role_attribute", "InvalidRoleAttribute", "Role attribute missing", {"roles": []}),
    Case("malformed_role_pair", "InvalidRoleAttribute", "1 part", {"roles": [ROLE_ARN]}),
    Case(
        "two_roles_no_provider",
        "InvalidRoleAttribute",
        "one IAM role ARN",
        {"roles": [f"{ROLE_ARN},{ROLE_ARN}"]},
    ),
    Case(
        "role_in_other_partition",
        "InvalidRoleAttribute",
        "partition aws-cn",
        {"roles": [ROLE_PAIR.replace("arn:aws:", "arn:aws-cn:")]},
    ),
    Case(
        "element_inside_role_value",
        "InvalidAssertion",
        "element content",
        {"before_sign": element_in_role},
    ),
    Case(
        "bad_role_session_name",
        "InvalidSessionAttribute",
        "RoleSessionName",
        {"attributes": {AWS + "RoleSessionName": ["a b"]}},
    ),
    Case(
        "session_duration_out_of_range",
        "InvalidSessionAttribute",
        "SessionDuration",
        {"attributes": {AWS + "SessionDuration": ["60"]}},
    ),
]


def build(idp: TestIdp, case: Case) -> str:
    kwargs = dict(case.response)
    for key in ("signer", "embed_cert"):
        if key in kwargs:
            kwargs[key] = idp.other_key if kwargs[key] == "other" else idp.key
    if case.raw is not None:
        return case.raw(idp.response())
    return encode(idp.response(**kwargs))


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
    """start_login -> pysaml2 parses our AuthnRequest -> answers it -> verify consumes the ID."""
    store = MemoryStore()
    v = await verifier(idp, store, idp_initiated=False)
    runtime = next(iter(v._by_entity.values()))
    url = await start_login(runtime, SP, store, relay_state="abc", now=now())
    assert url.startswith(idp.sso_url + "?SAMLRequest=")
    assert url.endswith("&RelayState=abc")
    request_id = idp.request_id(url)
    identity = await v.verify(idp.b64(in_response_to=request_id), now=now())
    assert identity.subject == "alice@example.com"
    # The request ID is single use: a second answer to it is refused.
    with pytest.raises(BrokerError) as info:
        await v.verify(idp.b64(in_response_to=request_id), now=now())
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
