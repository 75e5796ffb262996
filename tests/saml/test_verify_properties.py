"""Property: whatever arrives as a SAMLResponse, the screen and the verifier answer with an
identity only for what the IdP signed, else a 4xx with a stable code; never another exception
(a 500), never a traceback, and a refusal leaves the replay cache as it was."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from broker.config import SamlIdp
from broker.errors import BrokerError
from broker.identity import Identity
from broker.saml import screen
from broker.saml.settings import SamlIdpRuntime, load_idps
from broker.saml.verify import SamlVerifier
from broker.store import MemoryStore
from tests.fakes.fuzzing import B64, check_refusal, no_tracebacks, record
from tests.fakes.saml_cases import SP
from tests.fakes.saml_idp import NS, TestIdp

pytestmark = pytest.mark.fuzz

# ---- XML-ish documents: SAML's own names, shapes that parsers and canonicalisers trip on ----

TAGS = [
    "samlp:Response",
    "saml:Assertion",
    "saml:Issuer",
    "saml:Subject",
    "saml:NameID",
    "saml:Conditions",
    "saml:AudienceRestriction",
    "saml:Audience",
    "saml:AttributeStatement",
    "saml:Attribute",
    "saml:AttributeValue",
    "saml:EncryptedAssertion",
    "ds:Signature",
    "ds:SignedInfo",
    "ds:Reference",
    "ds:Transforms",
    "ds:Transform",
    "ds:DigestMethod",
    "ds:SignatureMethod",
    "ds:CanonicalizationMethod",
    "ds:SignatureValue",
    "ds:KeyInfo",
    "ds:Object",
    "x",
    "samlp:Extensions",
]
ATTRS = ["ID", "URI", "Algorithm", "Destination", "Version", "IssueInstant", "Name", "xml:id"]
VALUES = st.one_of(
    st.sampled_from(
        [
            "a",
            "#a",
            "",
            "2.0",
            SP.acs_url,
            "https://idp.example.test/saml",
            "http://www.w3.org/2001/10/xml-exc-c14n#",
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            "http://www.w3.org/TR/1999/REC-xslt-19991116",
            "2001-01-01T00:00:00Z",
            "https://aws.amazon.com/SAML/Attributes/Role",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
)
ROOT_NS = " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items())


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(TAGS))
    attrs = draw(st.dictionaries(st.sampled_from(ATTRS), VALUES, max_size=3))
    text = "".join(f' {k}="{_escape(v)}"' for k, v in attrs.items())
    children = draw(st.lists(elements(depth + 1), max_size=0 if depth > 2 else 3))
    body = draw(
        st.sampled_from(
            [
                "",
                "",
                "",
                "text",
                "<!-- c -->",
                "<?pi x?>",
                "<![CDATA[x]]>",
                "&amp;",
                "&#0;",
                "&x;",
                "&#x10FFFF;",
            ]
        )
    )
    return f"<{tag}{text}>{body}{''.join(children)}</{tag}>"


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    prolog = draw(
        st.sampled_from(
            [
                "",
                "",
                '<?xml version="1.0"?>',
                '<?xml version="1.0"?>',
                '<?xml version="1.0" encoding="UTF-16"?>',
                '<?xml version="1.1"?>',
                '<!DOCTYPE r [<!ENTITY x "y">]>',
                '<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd">',
            ]
        )
    )
    root = draw(elements())
    # Put the namespaces on the root element, whatever it is.
    head, _, rest = root.partition(">")
    doc = f"{prolog}{head} {ROOT_NS}>{rest}"
    junk = draw(st.sampled_from([b""] * 9 + [b"\x00", b"<", b" trailing"]))
    return doc.encode() + junk


# ---- a real IdP and a signed response to mutate --------------------------------------------


@dataclass
class World:
    idp: TestIdp
    runtimes: dict[str, SamlIdpRuntime]
    good: bytes = b""
    made_at: float = float("-inf")
    when: dt.datetime = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

    def fresh(self) -> bytes:
        """A good response, remade before python3-saml's own clock would call it expired."""
        if time.monotonic() - self.made_at > 120:
            self.good = self.idp.response()
            self.made_at = time.monotonic()
            self.when = dt.datetime.now(dt.UTC)
        return self.good


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    idp = TestIdp(tmp_path_factory.mktemp("idp"), acs_url=SP.acs_url)
    conf = SamlIdp(
        type="saml", entity_id=idp.entity_id, sso_url=idp.sso_url, certificates=[idp.key.cert_pem]
    )

    async def load() -> dict[str, SamlIdpRuntime]:
        async with httpx.AsyncClient() as http:
            return await load_idps({"corp": conf}, SP, http)

    w = World(idp, asyncio.run(load()))
    w.fresh()
    return w


class RecordingStore(MemoryStore):
    """Remembers every key a call actually wrote or consumed."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: list[str] = []

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        added = await super().add(key, value, ttl)
        if added:
            self.changed.append(key)
        return added

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self.changed.append(key)
        await super().put(key, value, ttl)

    async def take(self, key: str) -> bytes | None:
        value = await super().take(key)
        if value is not None:
            self.changed.append(key)
        return value


def verify(world: World, form_value: str, target: str) -> Identity | None:
    store = RecordingStore()
    verifier = SamlVerifier(world.runtimes, SP, partition="aws", store=store)
    with no_tracebacks():
        try:
            identity = asyncio.run(verifier.verify(form_value, now=world.when))
        except BrokerError as exc:
            record(target, check_refusal(exc))
            assert store.changed == [], store.changed
            return None
    record(target, "accepted")
    return identity


# ---- the screen alone ----------------------------------------------------------------------


def screened(xml: bytes, target: str) -> None:
    with no_tracebacks():
        try:
            screen.screen(xml)
        except BrokerError as exc:
            record(target, check_refusal(exc))
            return
    record(target, "screened")


@given(st.binary(max_size=400))
def test_screen_any_bytes(xml: bytes) -> None:
    screened(xml, "saml-screen-bytes")


@given(documents())
def test_screen_any_xmlish_document(xml: bytes) -> None:
    screened(xml, "saml-screen-xmlish")


@given(st.text(max_size=300) | st.text(alphabet=B64 + " \n\r\t-_.", max_size=300))
def test_decode_any_text(text: str) -> None:
    with no_tracebacks():
        try:
            screen.decode(text, max_b64=200, max_xml=100)
        except BrokerError as exc:
            record("saml-decode", check_refusal(exc))
            return
    record("saml-decode", "decoded")


# ---- the verifier's entry --------------------------------------------------------------------


@given(st.text(max_size=300) | st.text(alphabet=B64 + " \n", max_size=600))
def test_verify_any_text(world: World, text: str) -> None:
    assert verify(world, text, "saml-verify-text") is None


@given(st.binary(max_size=600))
def test_verify_any_bytes_as_base64(world: World, raw: bytes) -> None:
    assert verify(world, base64.b64encode(raw).decode(), "saml-verify-bytes") is None


@given(documents())
def test_verify_any_xmlish_document(world: World, xml: bytes) -> None:
    assert verify(world, base64.b64encode(xml).decode(), "saml-verify-xmlish") is None


Mutation = tuple[str, int, Any]
mutations = st.lists(
    st.tuples(
        st.sampled_from(["bytes", "drop", "copy", "attr", "text", "move"]),
        st.integers(min_value=0, max_value=10**6),
        st.binary(max_size=8) | VALUES,
    ),
    min_size=1,
    max_size=3,
)


def mutate(xml: bytes, steps: list[Mutation]) -> bytes:
    """Byte edits, and element edits on the signed tree (drop, duplicate, move, re-attribute,
    re-text): the shapes of signature wrapping, done at random."""
    for kind, where, what in steps:
        if kind == "bytes":
            i = where % (len(xml) + 1)
            data = what if isinstance(what, bytes) else what.encode()
            xml = xml[:i] + data + xml[i + len(data) // 2 :]
            continue
        try:
            root = etree.fromstring(xml)
        except etree.XMLSyntaxError:
            continue
        nodes = list(root.iter(etree.Element))
        node = nodes[where % len(nodes)]
        parent = node.getparent()
        other = nodes[(where // 7) % len(nodes)]
        text = what.decode("latin-1") if isinstance(what, bytes) else what
        text = "".join(c for c in text if c.isprintable())
        if kind == "drop" and parent is not None:
            parent.remove(node)
        elif kind == "copy" and parent is not None:
            parent.insert(parent.index(node), etree.fromstring(etree.tostring(node)))
        elif kind == "move" and parent is not None and node not in other.iterancestors():
            if other is not node:
                other.append(node)
        elif kind == "attr":
            name = ["ID", "URI", "Destination", "Recipient", "NotOnOrAfter", "Format"][where % 6]
            node.set(name, text)
        elif kind == "text":
            node.text = text
        xml = etree.tostring(root)
    return xml


@given(mutations)
def test_verify_any_mutation_of_a_signed_response(world: World, steps: list[Mutation]) -> None:
    """A mutated response is refused, or (an edit the signature does not cover, such as
    whitespace in a base64 value) it verifies to exactly what the IdP signed."""
    good = world.fresh()
    original = verify_once(world, good)
    identity = verify(world, base64.b64encode(mutate(good, steps)).decode(), "saml-verify-mutated")
    if identity is not None:
        assert identity.subject == original.subject
        assert identity.attributes == original.attributes


_originals: dict[bytes, Identity] = {}


def verify_once(world: World, good: bytes) -> Identity:
    if good not in _originals:
        verifier = SamlVerifier(world.runtimes, SP, partition="aws", store=MemoryStore())
        _originals.clear()
        _originals[good] = asyncio.run(
            verifier.verify(base64.b64encode(good).decode(), now=world.when)
        )
    return _originals[good]
