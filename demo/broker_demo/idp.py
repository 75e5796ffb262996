"""Demo SAML identity provider for `broker demo`: sign in as a demo user (not a real IdP)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import secrets
import zlib
from dataclasses import dataclass
from html import escape

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
AWS_ATTR = "https://aws.amazon.com/SAML/Attributes/"
AUDIENCE = "https://signin.aws.amazon.com/saml"
PROVIDER_NAME = "demo-idp"
LIFETIME = dt.timedelta(minutes=5)
MAX_REQUEST_B64 = 8 * 1024
MAX_REQUEST_XML = 32 * 1024
MAX_RELAY_STATE = 80  # SAML Bindings §3.4.3
NCNAME = re.compile(r"[A-Za-z_][\w.-]{0,255}", re.ASCII)
BANNER = "Demo identity provider — not a real IdP"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass(frozen=True, slots=True)
class DemoUser:
    name: str
    email: str
    groups: tuple[str, ...]
    roles: tuple[tuple[str, str], ...]  # (account id, IAM role name)


PRODUCTION, STAGING = "111111111111", "222222222222"
ACCOUNTS = {PRODUCTION: "Production", STAGING: "Staging"}
ADMIN, DEVELOPER = (PRODUCTION, "Admin"), (STAGING, "Developer")
READ_PRODUCTION, READ_STAGING = (PRODUCTION, "ReadOnly"), (STAGING, "ReadOnly")
USERS = (
    DemoUser("alice", "alice@example.com", ("admins",), (ADMIN, READ_STAGING)),
    DemoUser("bob", "bob@example.com", ("developers",), (DEVELOPER,)),
    DemoUser("carol", "carol@example.com", ("auditors",), (READ_PRODUCTION, READ_STAGING)),
)


def role_pair(account: str, role: str, partition: str = "aws") -> str:
    """AWS's Role attribute value: "role ARN,SAML provider ARN"."""
    return (
        f"arn:{partition}:iam::{account}:role/{role},"
        f"arn:{partition}:iam::{account}:saml-provider/{PROVIDER_NAME}"
    )


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_id() -> str:
    return "_" + secrets.token_hex(20)  # xs:ID is an NCName: never starts with a digit


def generate_key(common_name: str) -> tuple[bytes, str]:
    """A fresh RSA-2048 key and a self-signed certificate (PEM), made at every start."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, tag, attrs)
    node.text = text
    return node


class DemoIdp:
    """The IdP's pages (Starlette, `.app`) and its signed Responses (`.response`)."""

    def __init__(
        self, *, base_url: str, acs_url: str, partition: str = "aws", session_seconds: int = 3600
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.entity_id = self.base_url + "/saml"
        self.sso_url = self.base_url + "/sso"
        self.acs_url = acs_url
        self.partition = partition
        self.session_seconds = session_seconds
        key_pem, self.cert_pem = generate_key("broker demo IdP (not a real IdP)")
        self._key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem, None)
        self._key.load_cert_from_memory(
            self.cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem
        )
        self.app = Starlette(
            routes=[
                Route("/", self._index, methods=["GET"]),
                Route("/sso", self._sso, methods=["GET"]),
                Route("/signin", self._signin, methods=["POST"]),
            ],
            exception_handlers={HTTPException: self._http_error},  # type: ignore[dict-item]
        )

    def response(
        self, user: DemoUser, *, in_response_to: str | None = None, now: dt.datetime | None = None
    ) -> bytes:
        """A Response holding one assertion, both signed (RSA-SHA256, exclusive c14n)."""
        now = now or dt.datetime.now(dt.UTC)
        until = _stamp(now + LIFETIME)
        irt = {"InResponseTo": in_response_to} if in_response_to else {}
        nsmap = {"samlp": SAMLP, "saml": SAML}
        root = etree.Element(
            f"{{{SAMLP}}}Response",
            {"ID": _new_id(), "Version": "2.0", "IssueInstant": _stamp(now)}
            | {"Destination": self.acs_url}
            | irt,
            nsmap=nsmap,
        )
        _el(root, f"{{{SAML}}}Issuer", self.entity_id)
        status = _el(root, f"{{{SAMLP}}}Status")
        _el(status, f"{{{SAMLP}}}StatusCode", Value="urn:oasis:names:tc:SAML:2.0:status:Success")
        assertion = _el(
            root, f"{{{SAML}}}Assertion", ID=_new_id(), Version="2.0", IssueInstant=_stamp(now)
        )
        _el(assertion, f"{{{SAML}}}Issuer", self.entity_id)
        subject = _el(assertion, f"{{{SAML}}}Subject")
        _el(
            subject,
            f"{{{SAML}}}NameID",
            user.email,
            Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        )
        confirmation = _el(
            subject,
            f"{{{SAML}}}SubjectConfirmation",
            Method="urn:oasis:names:tc:SAML:2.0:cm:bearer",
        )
        scd = {"NotOnOrAfter": until, "Recipient": self.acs_url} | irt
        _el(confirmation, f"{{{SAML}}}SubjectConfirmationData", **scd)
        conditions = _el(
            assertion, f"{{{SAML}}}Conditions", NotBefore=_stamp(now), NotOnOrAfter=until
        )
        restriction = _el(conditions, f"{{{SAML}}}AudienceRestriction")
        _el(restriction, f"{{{SAML}}}Audience", AUDIENCE)
        authn = _el(
            assertion, f"{{{SAML}}}AuthnStatement", AuthnInstant=_stamp(now), SessionIndex=_new_id()
        )
        context = _el(authn, f"{{{SAML}}}AuthnContext")
        _el(
            context,
            f"{{{SAML}}}AuthnContextClassRef",
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        )
        statement = _el(assertion, f"{{{SAML}}}AttributeStatement")
        attributes = {
            AWS_ATTR + "Role": [role_pair(a, r, self.partition) for a, r in user.roles],
            AWS_ATTR + "RoleSessionName": [user.email],
            AWS_ATTR + "SessionDuration": [str(self.session_seconds)],
            "groups": list(user.groups),
        }
        for name, values in attributes.items():
            attribute = _el(
                statement,
                f"{{{SAML}}}Attribute",
                Name=name,
                NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
            )
            for value in values:
                _el(attribute, f"{{{SAML}}}AttributeValue", value)
        # The assertion first: the Response's digest then covers the signed assertion.
        self._sign(assertion)
        self._sign(root)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def _sign(self, element: etree._Element) -> None:
        """XML-DSig enveloped signature, placed right after Issuer as the SAML schema wants."""
        signature = xmlsec.template.create(
            element, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256
        )
        element.insert(1, signature)
        ref = xmlsec.template.add_reference(
            signature, xmlsec.constants.TransformSha256, uri="#" + element.get("ID", "")
        )
        xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
        xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
        x509_data = xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
        xmlsec.template.x509_data_add_certificate(x509_data)
        ctx = xmlsec.SignatureContext()
        ctx.key = self._key
        ctx.register_id(element, "ID")
        ctx.sign(signature)

    async def _index(self, request: Request) -> Response:
        return self._users_page(None, None)

    async def _sso(self, request: Request) -> Response:
        """SP-initiated, HTTP-Redirect binding (SAML Bindings §3.4.4.1): raw DEFLATE, base64."""
        encoded = request.query_params.get("SAMLRequest", "")
        relay = request.query_params.get("RelayState", "")
        if not encoded or len(encoded) > MAX_REQUEST_B64:
            return _page("Bad request", "<p>A SAMLRequest (of sensible size) is required.</p>", 400)
        if len(relay.encode()) > MAX_RELAY_STATE:
            return _page("Bad request", "<p>RelayState is over 80 bytes.</p>", 400)
        try:
            inflater = zlib.decompressobj(-15)
            xml = inflater.decompress(base64.b64decode(encoded, validate=True), MAX_REQUEST_XML)
            if inflater.unconsumed_tail:
                raise ValueError("inflated request too large")
            root = etree.fromstring(xml, _PARSER)
        except (binascii.Error, zlib.error, ValueError, etree.XMLSyntaxError):
            return _page("Bad request", "<p>The SAMLRequest could not be read.</p>", 400)
        request_id = root.get("ID", "")
        acs = root.get("AssertionConsumerServiceURL")
        if root.tag != f"{{{SAMLP}}}AuthnRequest" or not NCNAME.fullmatch(request_id):
            return _page("Bad request", "<p>That is not an AuthnRequest.</p>", 400)
        if acs is not None and acs != self.acs_url:
            return _page("Bad request", "<p>Responses go only to the demo broker.</p>", 400)
        return self._users_page(request_id, relay)

    async def _signin(self, request: Request) -> Response:
        form = await request.form()
        user = next((u for u in USERS if u.name == form.get("user")), None)
        irt, relay = form.get("in_response_to") or None, form.get("relay_state") or ""
        if (
            user is None
            or (irt is not None and not (isinstance(irt, str) and NCNAME.fullmatch(irt)))
            or not isinstance(relay, str)
            or len(relay.encode()) > MAX_RELAY_STATE
        ):
            return _page("Bad request", "<p>Pick one of the demo users.</p>", 400)
        encoded = base64.b64encode(self.response(user, in_response_to=irt)).decode()
        relay_field = (
            f'<input type="hidden" name="RelayState" value="{escape(relay)}">' if relay else ""
        )
        body = (
            f'<form id="post" method="post" action="{escape(self.acs_url)}">'
            f'<input type="hidden" name="SAMLResponse" value="{encoded}">{relay_field}'
            f"<p>Signing in to the broker as {escape(user.email)}…</p>"
            '<noscript><button type="submit">Continue</button></noscript></form>'
            "<script>document.getElementById('post').submit();</script>"
        )
        return _page("Signing in", body, 200)

    def _users_page(self, request_id: str | None, relay: str | None) -> Response:
        hidden = ""
        if request_id:
            hidden += f'<input type="hidden" name="in_response_to" value="{escape(request_id)}">'
        if relay:
            hidden += f'<input type="hidden" name="relay_state" value="{escape(relay)}">'
        items = []
        for u in USERS:
            roles = ", ".join(f"{r} in {ACCOUNTS.get(a, a)}" for a, r in u.roles)
            items.append(
                f'<li><form method="post" action="/signin">{hidden}'
                f'<button type="submit" name="user" value="{escape(u.name)}" id="user-{escape(u.name)}">'
                f"Sign in as {escape(u.name)}</button> "
                f"<span>{escape(u.email)} · groups: {escape(', '.join(u.groups))} · "
                f"roles: {escape(roles)}</span></form></li>"
            )
        intro = (
            "<p>Pick a demo user. The broker receives a SAML Response signed with a key made "
            "when <code>broker demo</code> started; no password, no real accounts.</p>"
        )
        return _page("Sign in to the demo", intro + "<ul>" + "".join(items) + "</ul>", 200)

    async def _http_error(self, request: Request, exc: HTTPException) -> Response:
        return _page("Not here", "<p>Nothing at this address.</p>", exc.status_code)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {banner}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;\
overflow-wrap:anywhere">
<header><p id="banner" style="background:#fde68a;padding:.5em;font-weight:bold">{banner}</p></header>
<main>
<h1>{title}</h1>
{body}
</main>
</body></html>
"""


def _page(title: str, body_html: str, status: int) -> HTMLResponse:
    """`body_html` is already escaped. Every page carries the not-a-real-IdP banner."""
    html = _PAGE.format(title=escape(title), banner=BANNER, body=body_html)
    return HTMLResponse(html, status, headers={"cache-control": "no-store"})
