"""Verify a SAMLResponse with python3-saml in strict mode, close its gaps, return an Identity.

Order: size and base64 (screen.decode) -> hardened screening parse that only refuses
(screen.screen) -> route by Issuer -> python3-saml parses and validates (signature, schema,
its own strict checks) -> our checks on *that same* lxml tree -> identity read from that tree
-> InResponseTo against the requests the caller started -> replay caches in the store.

Clocks: our checks use the `now` argument plus the IdP's clock_skew_seconds. python3-saml
also reads the system clock inside is_valid (Conditions with 300 s drift, SubjectConfirmation-
Data and SessionNotOnOrAfter with none); it can only refuse more, never accept more."""

from __future__ import annotations

import logging
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
from lxml import etree
from onelogin.saml2 import response as _onelogin_response
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_ValidationError
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from broker.errors import (
    AlgorithmNotAllowed,
    BrokerError,
    InvalidAssertion,
    InvalidAudience,
    InvalidDestination,
    InvalidIssuer,
    InvalidSignature,
    InvalidSubjectConfirmation,
    MalformedRequest,
    ReplayDetected,
    SessionExpired,
    TokenExpired,
    TokenNotYetValid,
    UnknownInResponseTo,
    UnknownIssuer,
)
from broker.identity import Identity, SamlAssertion
from broker.saml import checks, screen
from broker.saml.attributes import AwsAttributes, parse_aws, read_attributes
from broker.saml.checks import Checked
from broker.saml.settings import SamlIdpRuntime, SpEndpoints
from broker.store import Store

log = logging.getLogger(__name__)
USED_REQUEST_KEY = "saml-request-used:{}"
#: At least as long as a browser keeps a pending request (broker.saml.pending).
USED_REQUEST_SECONDS = 600
ASSERTION_KEY = "saml-assertion:{}:{}"
INLINE_MAX_B64 = 16 * 1024
_NSMAP = OneLogin_Saml2_Constants.NSMAP


class _CachedSchemaXml(OneLogin_Saml2_XML):  # type: ignore[misc]
    """python3-saml compiles its XSD on every call (about 40% of a validation) and each of
    its ~37 XPath queries per response; python3-saml has no switch for either, so its own
    code is given a schema and XPath expressions compiled once per thread (lxml's compiled
    objects are not to be shared between threads). Same schema, same queries, same tree,
    same verdict."""

    _local = threading.local()
    _xpaths = threading.local()
    _dir = Path(_onelogin_response.__file__).parent / "schemas"

    @staticmethod
    def query(dom: Any, query: str, context: Any = None, tagid: str | None = None) -> Any:
        if tagid is not None:  # the library's rare id-filtered form: its own code
            return OneLogin_Saml2_XML.query(dom, query, context, tagid)
        cache: dict[str, etree.XPath] = _CachedSchemaXml._xpaths.__dict__
        compiled = cache.get(query)
        if compiled is None:
            compiled = cache[query] = etree.XPath(query, namespaces=_NSMAP)
        return compiled(dom if context is None else context)

    @staticmethod
    def validate_xml(xml: Any, schema: str, debug: bool = False) -> Any:
        cache: dict[str, etree.XMLSchema] = _CachedSchemaXml._local.__dict__
        compiled = cache.get(schema)
        if compiled is None:
            compiled = cache[schema] = etree.XMLSchema(etree.parse(_CachedSchemaXml._dir / schema))
        if not isinstance(xml, etree._Element):
            return "unloaded_xml"
        return xml if compiled.validate(xml) else "invalid_xml"


_SCOPE = dict(vars(_onelogin_response), OneLogin_Saml2_XML=_CachedSchemaXml)


def _rebind(func: Any) -> Any:
    """The library's own bytecode, resolving OneLogin_Saml2_XML to the cached subclass: no
    code copied, no global monkeypatch, other users of the library unaffected."""
    rebound = types.FunctionType(
        func.__code__, _SCOPE, func.__name__, func.__defaults__, func.__closure__
    )
    rebound.__kwdefaults__ = func.__kwdefaults__
    return rebound


class _Response(_onelogin_response.OneLogin_Saml2_Response):  # type: ignore[misc]
    """OneLogin_Saml2_Response with every method of its own reading the cached XML helper."""


for _name, _member in vars(_onelogin_response.OneLogin_Saml2_Response).items():
    if isinstance(_member, types.FunctionType):
        setattr(_Response, _name, _rebind(_member))


_E = OneLogin_Saml2_ValidationError
_CODE_NAMES = {v: k for k, v in vars(_E).items() if k.isupper() and isinstance(v, int)}
_BY_CODE: dict[int, tuple[type[BrokerError], str]] = {
    _E.INVALID_SIGNATURE: (InvalidSignature, "The SAML response signature is not valid."),
    _E.NO_SIGNATURE_FOUND: (InvalidSignature, "The SAML response is not signed."),
    _E.DEPRECATED_SIGNATURE_METHOD: (AlgorithmNotAllowed, "Deprecated signature algorithm."),
    _E.DEPRECATED_DIGEST_METHOD: (AlgorithmNotAllowed, "Deprecated digest algorithm."),
    _E.ASSERTION_EXPIRED: (TokenExpired, "The SAML assertion has expired."),
    _E.RESPONSE_EXPIRED: (TokenExpired, "The SAML assertion has expired."),
    _E.ASSERTION_TOO_EARLY: (TokenNotYetValid, "The SAML assertion is not yet valid."),
    _E.SESSION_EXPIRED: (SessionExpired, "The SAML session has expired."),
    _E.WRONG_AUDIENCE: (InvalidAudience, "The SAML assertion is for another audience."),
    _E.WRONG_ISSUER: (InvalidIssuer, "The SAML issuers do not match."),
    _E.ISSUER_MULTIPLE_IN_RESPONSE: (InvalidIssuer, "The SAML issuers do not match."),
    _E.ISSUER_NOT_FOUND_IN_ASSERTION: (InvalidIssuer, "The SAML assertion has no issuer."),
    _E.WRONG_DESTINATION: (InvalidDestination, "The SAML response is for another endpoint."),
    _E.EMPTY_DESTINATION: (InvalidDestination, "The SAML response is for another endpoint."),
    _E.WRONG_SUBJECTCONFIRMATION: (
        InvalidSubjectConfirmation,
        "The SAML assertion's subject confirmation is not valid.",
    ),
    _E.WRONG_INRESPONSETO: (UnknownInResponseTo, "The SAML response answers no request of ours."),
}


@dataclass(frozen=True, slots=True)
class _Verified:
    runtime: SamlIdpRuntime
    checked: Checked
    subject: str
    attributes: dict[str, list[str]]
    aws: AwsAttributes


class SamlVerifier:
    def __init__(
        self,
        idps: Mapping[str, SamlIdpRuntime],
        sp: SpEndpoints,
        *,
        partition: str,
        store: Store,
        max_response_bytes: int = 256 * 1024,
        roles_optional: bool = False,
    ) -> None:
        self._by_entity = {rt.entity_id: rt for rt in idps.values()}
        self._sp = sp
        self._partition = partition
        self._store = store
        # Issuer mode: an IdP may only authenticate; the broker signs the AWS attributes.
        self._roles_optional = roles_optional
        self._max_xml = max_response_bytes
        # Base64 is 4/3 of the bytes, plus line breaks some IdPs insert every 64-76 characters.
        self._max_b64 = max_response_bytes * 4 // 3 + max_response_bytes // 16 + 4
        # python3-saml derives "the URL we were reached at" from this dict: we give it the ACS
        # URL from server.base_url, never the request's Host or X-Forwarded-* headers.
        acs = urlsplit(sp.acs_url)
        self._request_data = {
            "https": "on" if acs.scheme == "https" else "off",
            "http_host": acs.netloc,
            "script_name": acs.path,
        }

    async def verify(
        self, saml_response: str, *, now: datetime, started: Mapping[str, str] | None = None
    ) -> Identity:
        """Verify the base64 SAMLResponse form value; raise a BrokerError on any doubt."""
        identity, _ = await self.verify_sign_in(saml_response, now=now, started=started)
        return identity

    async def verify_sign_in(
        self, saml_response: str, *, now: datetime, started: Mapping[str, str] | None = None
    ) -> tuple[Identity, str | None]:
        """Verify, and name the request the response answers (None: unsolicited).

        `started`: the AuthnRequests the posting browser started (request ID → the IdP it
        went to), from its signed pending-login cookie; None for a caller with no browser."""
        # CPU-bound lxml + xmlsec. Measured (bench/saml_acs.py): ~1.5-2 ms for a typical
        # 5-10 KB response, where a thread hop costs ~25% of throughput, so those run inline;
        # ~18 ms for a 150 KB one, which would stall the event loop, so large ones go to a thread.
        if len(saml_response) <= INLINE_MAX_B64:
            verified = self._verify_sync(saml_response, now)
        else:
            verified = await anyio.to_thread.run_sync(self._verify_sync, saml_response, now)
        rt, c = verified.runtime, verified.checked
        checks.solicited(rt, c.in_response_to, started)
        skew = rt.config.clock_skew_seconds
        ttl = max(1.0, (c.expires_at - now).total_seconds() + skew)
        if not await self._store.add(ASSERTION_KEY.format(rt.name, c.assertion_id), b"1", ttl):
            raise ReplayDetected(
                "This SAML assertion has already been used.",
                log_detail=f"replayed assertion idp={rt.name}",
            )
        # Use the request only once everything else has passed; a second answer to the same
        # request (or the same cookie presented again) loses here. Written only for a signed
        # answer: anonymous callers cannot make the store grow.
        irt = c.in_response_to
        if irt is not None and not await self._store.add(
            USED_REQUEST_KEY.format(irt), b"1", USED_REQUEST_SECONDS
        ):
            raise UnknownInResponseTo(
                "The SAML response answers no sign-in request of ours.",
                log_detail="InResponseTo already used",
            )
        return _identity(verified, saml_response), irt

    def verify_document(self, saml_response: str, *, now: datetime) -> Identity:
        """The document checks alone, for `broker explain`: no replay cache and no
        InResponseTo, since a saved copy is explained offline and grants nothing."""
        return _identity(self._verify_sync(saml_response, now), saml_response)

    def _verify_sync(self, saml_response: str, now: datetime) -> _Verified:
        raw = screen.decode(saml_response, max_b64=self._max_b64, max_xml=self._max_xml)
        screened = screen.screen(raw)
        rt = self._by_entity.get(screened.issuer or "")
        if rt is None:
            raise UnknownIssuer(
                "The SAML response is from an unknown identity provider.",
                log_detail=f"issuer {str(screened.issuer)[:200]!r} not configured",
            )
        if screened.uses_sha1:
            if not rt.config.allow_sha1:
                raise AlgorithmNotAllowed(
                    "The SAML response is signed with SHA-1, which is not allowed.",
                    log_detail=f"SHA-1 signature/digest, allow_sha1=false idp={rt.name}",
                )
            log.warning("idp %s signed a response with SHA-1 (allowed by allow_sha1)", rt.name)
        settings = next(
            (rt.by_audience[a] for a in rt.config.audiences if a in screened.audiences), None
        )
        if settings is None:
            raise InvalidAudience(
                "The SAML assertion is not addressed to AWS.",
                log_detail="no AudienceRestriction"
                if not screened.audiences
                else "no configured audience in the assertion",
            )
        try:
            resp = _Response(settings, saml_response)
        except Exception as exc:  # library boundary: the screen already parsed these bytes
            raise MalformedRequest(
                "The SAMLResponse could not be read.", log_detail=type(exc).__name__
            ) from exc
        doc: etree._Element = resp.document
        checks.key_info(doc, rt.certificates)
        try:
            resp.is_valid(self._request_data, None, raise_exceptions=True)
        except OneLogin_Saml2_ValidationError as exc:
            cls, detail = _BY_CODE.get(
                exc.code, (InvalidAssertion, "The SAML response is not valid.")
            )
            raise cls(
                detail, log_detail=f"python3-saml {_CODE_NAMES.get(exc.code, exc.code)}"
            ) from exc
        except Exception as exc:  # library boundary: e.g. an unparsable timestamp
            raise InvalidAssertion(
                "The SAML response is not valid.", log_detail=f"python3-saml {type(exc).__name__}"
            ) from exc
        checked = checks.after_library(doc, rt, self._sp, now)
        subject = checks.name_id(checked.assertion)
        attributes = read_attributes(checked.assertion)
        aws = parse_aws(attributes, self._partition, roles_optional=self._roles_optional)
        return _Verified(rt, checked, subject, attributes, aws)


def _identity(verified: _Verified, saml_response: str) -> Identity:
    c, aws = verified.checked, verified.aws
    return Identity(
        protocol="saml",
        idp=verified.runtime.name,
        issuer=verified.runtime.entity_id,
        subject=verified.subject,
        attributes=verified.attributes,
        expires_at=c.expires_at,
        proof=SamlAssertion(saml_response, issued_at=c.issued_at),
        signed_roles=aws.roles,
        session_name=aws.session_name,
        session_duration=aws.session_duration,
        session_not_on_or_after=c.session_not_on_or_after,
    )
