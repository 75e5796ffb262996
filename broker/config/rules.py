"""Accounts, roles and rules: what may be granted, and the `when` clause that grants it."""

from __future__ import annotations

import json
import string
from typing import Annotated, Any

from pydantic import ConfigDict, Field, PlainValidator, field_validator, model_validator

from broker import matchers
from broker.aws.arn import MAX_SESSION_SECONDS, MIN_SESSION_SECONDS, ROLE_ARN, account_of
from broker.config.base import NAME, Strict
from broker.config.issuer import Via, check_session_tags, check_source_identity

AccountId = Annotated[str, Field(pattern=r"^\d{12}$")]


class Account(Strict):
    name: str = Field(min_length=1, max_length=128)


def account_keys(v: Any) -> Any:
    """YAML reads an unquoted id as an int, and one with a leading 0 as octal: only an
    unambiguous 12-digit int is taken as is; anything else must be quoted."""
    if isinstance(v, dict):
        out: dict[Any, Any] = {}
        for k, a in v.items():
            if isinstance(k, int) and not isinstance(k, bool):
                if not 10**11 <= k < 10**12:
                    raise ValueError(f"account id {k} must be 12 digits; quote it in YAML")
                k = str(k)
            out[k] = a
        return out
    return v


class AccountsFile(Strict):
    """The file a config's `accounts_file` names: an `accounts:` section, as in the config."""

    accounts: dict[AccountId, Account] = Field(default_factory=dict)

    _keys = field_validator("accounts", mode="before")(account_keys)


class Role(Strict):
    arn: str
    max_session_seconds: int = Field(3600, ge=MIN_SESSION_SECONDS, le=MAX_SESSION_SECONDS)
    session_policy: str | None = None
    session_policy_arns: list[str] = Field(default_factory=list, max_length=10)
    description: str | None = None
    # How STS is reached: the broker's own signed assertion, or the IdP's proof passed through.
    # Unset: `issuer` when the config has an issuer section, else `idp`.
    via: Via | None = None
    # Issuer mode only: templates over the identity's claims, e.g. {Department: "{department}"}.
    session_tags: dict[str, str] = Field(default_factory=dict)
    transitive_tags: list[str] = Field(default_factory=list)
    source_identity: str | None = None

    @field_validator("arn")
    @classmethod
    def _arn(cls, v: str) -> str:
        if not ROLE_ARN.fullmatch(v):
            raise ValueError(f"not an IAM role ARN: {v!r}")
        return v

    @model_validator(mode="after")
    def _session_templates(self) -> Role:
        check_session_tags(self.session_tags, self.transitive_tags)
        if self.source_identity is not None:
            check_source_identity(self.source_identity)
        return self

    @property
    def shapes_session(self) -> bool:
        """It sets session tags or SourceIdentity, which only the broker's assertion can carry."""
        return bool(self.session_tags) or self.source_identity is not None

    @field_validator("session_policy", mode="before")
    @classmethod
    def _policy(cls, v: Any) -> str | None:
        if v is None:
            return None
        try:
            doc = json.loads(v) if isinstance(v, str) else v
        except json.JSONDecodeError as exc:
            raise ValueError(f"session_policy is not JSON: {exc.msg}") from None
        if not isinstance(doc, dict):
            raise ValueError("session_policy must be a JSON object")
        text = json.dumps(doc, separators=(",", ":"))
        if len(text) > 2048:
            raise ValueError("session_policy exceeds STS's 2048 characters once minified")
        return text

    @property
    def account_id(self) -> str:
        return account_of(self.arn)


class GrantTemplate(Strict):
    """A role ARN built from a rule's named regex groups: `arn:aws:iam::{account}:role/{role}`."""

    arn: str
    max_session_seconds: int = Field(3600, ge=MIN_SESSION_SECONDS, le=MAX_SESSION_SECONDS)
    via: Via | None = None

    def placeholders(self) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(self.arn) if f}


def _parse_when(v: Any) -> matchers.Matcher | None:
    if v is None or isinstance(v, matchers.ClaimTest | matchers.Combine | matchers.Not):
        return v
    return matchers.parse(v)


def _listify(v: Any) -> Any:
    return [v] if isinstance(v, str | dict) else v


class Rule(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str = Field(pattern=NAME)
    idp: str = "*"
    description: str | None = None
    when: Annotated[matchers.Matcher | None, PlainValidator(_parse_when)] = None
    grant: list[str | GrantTemplate] = Field(default_factory=list)
    deny: list[str | GrantTemplate] = Field(default_factory=list)

    _listify_grant = field_validator("grant", "deny", mode="before")(_listify)

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        if not self.grant and not self.deny:
            raise ValueError("a rule needs grant and/or deny")
        groups = matchers.group_names(self.when) if self.when else set()
        for item in (*self.grant, *self.deny):
            if isinstance(item, GrantTemplate):
                missing = item.placeholders() - groups
                if missing:
                    raise ValueError(
                        f"template {item.arn!r} uses {sorted(missing)}, "
                        "which no regex in this rule's `when` always binds"
                    )
        return self
