"""A canary for the python3-saml internals broker/saml/verify.py depends on: it fails loudly
on any other version of the two library files the speed-up rebinds, before a user could."""

from __future__ import annotations

import hashlib
import inspect
from importlib.metadata import version

import onelogin.saml2.response as library_response
import onelogin.saml2.xml_utils as library_xml

from broker.saml import verify

# Reviewed against python3-saml 1.16.0. On a change: read the library's diff for
# OneLogin_Saml2_Response and OneLogin_Saml2_XML.query/validate_xml, check that
# verify._CachedSchemaXml still returns what they return, then update these.
PINNED = "1.16.0"
SOURCES = {
    library_response: "94d181d319afd4736b379f49afedfbb520867b125dc7602ddad9393ae4f001f6",
    library_xml: "0ea015640686d192d5c22b316f549081ab7c560e2bef2bd07f8a3958e829801b",
}
REVIEW = (
    "python3-saml's internals changed: review broker/saml/verify.py (_CachedSchemaXml, _Response)"
)


def test_the_pinned_version_is_installed() -> None:
    assert version("python3-saml") == PINNED, REVIEW


def test_the_rebound_sources_are_the_reviewed_ones() -> None:
    for module, digest in SOURCES.items():
        assert module.__file__ is not None
        with open(module.__file__, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, f"{module.__name__}: {REVIEW}"


def test_the_overridden_helpers_keep_their_signatures() -> None:
    xml = library_xml.OneLogin_Saml2_XML
    for name in ("query", "validate_xml"):
        ours = inspect.signature(getattr(verify._CachedSchemaXml, name))
        theirs = inspect.signature(getattr(xml, name))
        assert list(ours.parameters) == list(theirs.parameters), f"{name}: {REVIEW}"


def test_every_library_method_reads_the_cached_helper() -> None:
    """The rebinding reaches every method that names OneLogin_Saml2_XML, and only through
    the module globals it replaces."""
    for name, member in vars(library_response.OneLogin_Saml2_Response).items():
        if inspect.isfunction(member) and "OneLogin_Saml2_XML" in member.__code__.co_names:
            rebound = getattr(verify._Response, name)
            assert rebound.__globals__["OneLogin_Saml2_XML"] is verify._CachedSchemaXml, name
