"""Issuer mode settings (the broker as a SAML IdP for AWS) and the checks on roles' session templates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from broker.config.base import Strict, check_url
from broker.issuer import limits
from broker.issuer.templates import Template

Via = Literal["issuer", "idp"]
# IAM CreateSAMLProvider: Name is 1-128 of [\w._-].
PROVIDER_NAME = r"^[\w._-]{1,128}$"


class SigningKey(Strict):
    """A private key (PEM) and its certificate (PEM), published in the broker's metadata."""

    key_file: Path
    certificate_file: Path


class IssuerSettings(Strict):
    # The IAM SAML provider's name in every account: arn:<partition>:iam::<acct>:saml-provider/<name>.
    provider_name: str = Field("broker", pattern=PROVIDER_NAME)
    # The Issuer of every assertion and the metadata's entityID; default <base_url>/issuer.
    entity_id: str | None = None
    # The first key signs; the others are only published, so a rotation can publish the next
    # key to IAM before it signs, and keep the retired one until nothing signed by it is live.
    signing_keys: list[SigningKey] = Field(min_length=1, max_length=4)
    # How long a broker session (browser or CLI) may go on minting credentials for issuer roles.
    session_seconds: int = Field(8 * 3600, ge=300, le=7 * 86400)

    @field_validator("entity_id")
    @classmethod
    def _entity_id(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v, "issuer.entity_id")

    def entity(self, base_url: str) -> str:
        return self.entity_id or f"{base_url}/issuer"

    def provider_arn(self, partition: str, account: str) -> str:
        return f"arn:{partition}:iam::{account}:saml-provider/{self.provider_name}"


def check_session_tags(tags: Mapping[str, str], transitive: Sequence[str]) -> None:
    """Load-time checks: keys are literal and must be valid as written; the literal text of a
    value template already counts against the value's length and character set."""
    problems = []
    for key, text in tags.items():
        problem = limits.tag_key_problem(key)
        if problem:
            problems.append(f"session_tags {key!r}: {problem}")
        template = Template.parse(text)
        problem = limits.tag_value_problem(template.literal)
        if problem:
            problems.append(f"session_tags {key!r}: the template's own text: {problem}")
    problems += limits.tag_set_problems(list(tags), transitive)
    if problems:
        raise ValueError("; ".join(problems))


def check_source_identity(text: str) -> None:
    template = Template.parse(text)
    literal = template.literal
    if not template.paths:
        problem = limits.source_identity_problem(literal)
    elif len(literal) > limits.MAX_SOURCE_IDENTITY:
        problem = f"its own text is already longer than {limits.MAX_SOURCE_IDENTITY} characters"
    elif limits.reserved(template.parts[0][0]):
        problem = "a SourceIdentity beginning with 'aws:' is reserved for AWS"
    elif not limits.SOURCE_IDENTITY_CHARS.fullmatch(literal):
        problem = "its own text has characters outside ASCII letters, digits and _+=,.@-"
    else:
        problem = None
    if problem:
        raise ValueError(f"source_identity {text!r}: {problem}")
