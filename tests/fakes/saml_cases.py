"""The SAML verifier's table of named bad inputs: each with the code it must be refused with."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.config import ServerSettings
from broker.saml.settings import sp_endpoints
from tests.fakes.saml_edits import (
    NAME_ID,
    SCD,
    all_times,
    assertion,
    comment_in,
    drop_key_info,
    element_in_role,
    find,
    moved_assertion,
    remove,
    role_value_comment,
    set_attr,
    swap_issuer,
    tamper_name_id,
    two_assertions,
    two_confirmations,
    xslt_transform,
    xsw1,
    xsw2,
    xsw3,
    xsw4,
    xsw5,
    xsw6,
    xsw7,
    xsw8,
)
from tests.fakes.saml_idp import AWS, PROVIDER_ARN, ROLE_ARN, SHA1, TestIdp, encode

#: The verifier tests' own service provider: the ACS URL the table's Recipient cases name.
SP = sp_endpoints(ServerSettings(base_url="https://broker.example.test"))
ROLE_PAIR = f"{ROLE_ARN},{PROVIDER_ARN}"

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
