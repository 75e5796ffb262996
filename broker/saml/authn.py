"""SP-initiated login: an AuthnRequest over HTTP-Redirect; the caller keeps its ID for InResponseTo."""

from __future__ import annotations

import base64
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from lxml import etree

from broker.errors import InvalidParameter
from broker.saml.settings import SamlIdpRuntime, SpEndpoints

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
MAX_RELAY_STATE_BYTES = 80  # SAML Bindings §3.4.3


def authn_request(request_id: str, idp: SamlIdpRuntime, sp: SpEndpoints, now: datetime) -> bytes:
    """SAML Core §3.4.1: an unsigned AuthnRequest asking for an HTTP-POST response at our ACS."""
    root = etree.Element(f"{{{SAMLP}}}AuthnRequest", nsmap={"samlp": SAMLP, "saml": SAML})
    root.set("ID", request_id)
    root.set("Version", "2.0")
    root.set("IssueInstant", now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    root.set("Destination", idp.sso_url or "")
    root.set("AssertionConsumerServiceURL", sp.acs_url)
    root.set("ProtocolBinding", POST)
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = sp.entity_id
    etree.SubElement(root, f"{{{SAMLP}}}NameIDPolicy").set("AllowCreate", "true")
    return etree.tostring(root)


@dataclass(frozen=True, slots=True)
class StartedLogin:
    request_id: str
    url: str  # the IdP's SSO URL carrying the AuthnRequest


def start_login(
    idp: SamlIdpRuntime, sp: SpEndpoints, *, now: datetime, relay_state: str = ""
) -> StartedLogin:
    """Build the IdP redirect URL (SAML Bindings §3.4.4). Nothing is stored: the browser
    keeps the request ID (broker.saml.pending), so verify() can match its InResponseTo."""
    if idp.sso_url is None:
        raise InvalidParameter(
            "This identity provider only supports sign-in from its own portal.",
            log_detail=f"idp {idp.name} has no sso_url",
        )
    if len(relay_state.encode()) > MAX_RELAY_STATE_BYTES:
        raise InvalidParameter(
            "The RelayState is too long.", log_detail=f"RelayState > {MAX_RELAY_STATE_BYTES} bytes"
        )
    # xs:ID is an NCName: it must not start with a digit.
    request_id = "_" + secrets.token_hex(20)
    xml = authn_request(request_id, idp, sp, now)
    deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    encoded = base64.b64encode(deflater.compress(xml) + deflater.flush()).decode()
    params = {"SAMLRequest": encoded}
    if relay_state:
        params["RelayState"] = relay_state
    separator = "&" if "?" in idp.sso_url else "?"
    return StartedLogin(request_id, idp.sso_url + separator + urlencode(params))
