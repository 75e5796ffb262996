"""Edits to a SAML Response before or after it is signed: the XML signature wrapping taxonomy,
comments in signed text, moved or duplicated elements, shifted validity bounds."""

from __future__ import annotations

import copy
import datetime as dt

from lxml import etree

from tests.fakes.saml_idp import NS, Edit


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
            if name in node.attrib:
                del node.attrib[name]
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
