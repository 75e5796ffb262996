"""The whole configuration: one typed document, cross-checked once at startup."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from broker.config.base import NAME, Strict
from broker.config.idps import OidcIdp, SamlIdp
from broker.config.issuer import IssuerSettings, Via
from broker.config.rules import (
    Account,
    AccountId,
    GrantTemplate,
    Role,
    Rule,
    account_keys,
)
from broker.config.settings import AuditSettings, AwsSettings, ServerSettings
from broker.config.store import StoreSettings

IdentityProvider = Annotated[OidcIdp | SamlIdp, Field(discriminator="type")]


class Config(Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    identity_providers: dict[Annotated[str, Field(pattern=NAME)], IdentityProvider] = Field(
        min_length=1
    )
    accounts: dict[AccountId, Account] = Field(default_factory=dict)
    # A YAML file of more `accounts:` (relative to this file), which the loader merges in:
    # `broker setup accounts` rewrites it, so the names need not live among hand-kept comments.
    accounts_file: str | None = Field(None, min_length=1)
    roles: dict[Annotated[str, Field(pattern=NAME)], Role] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    # Issuer mode: the broker signs its own SAML assertions for roles reached `via: issuer`.
    issuer: IssuerSettings | None = None

    _account_keys = field_validator("accounts", mode="before")(account_keys)

    @model_validator(mode="after")
    def _references(self) -> Config:
        problems: list[str] = []
        for name, role in self.roles.items():
            part = role.arn.split(":")[1]
            if part != self.aws.partition:
                problems.append(
                    f"roles.{name}.arn is in partition {part}, but aws.partition is {self.aws.partition}"
                )
            if role.via == "issuer" and self.issuer is None:
                problems.append(f"roles.{name}.via is issuer, but there is no issuer section")
            if role.shapes_session and self.via_of(role) != "issuer":
                problems.append(
                    f"roles.{name}: session_tags and source_identity are signed by the broker, "
                    "so they need via: issuer (an IdP's own assertion carries its own)"
                )
        if self.issuer is not None and isinstance(
            self.identity_providers.get(self.issuer.provider_name), SamlIdp
        ):
            problems.append(
                f"issuer.provider_name {self.issuer.provider_name!r} is also a SAML IdP's name, "
                "which names that IdP's IAM provider: pick another"
            )
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            where = f"rules[{i}] ({rule.name})"
            if rule.name in seen:
                problems.append(f"{where}: duplicate rule name")
            seen.add(rule.name)
            if rule.idp != "*" and rule.idp not in self.identity_providers:
                problems.append(f"{where}.idp: no identity provider named {rule.idp!r}")
            for item in (*rule.grant, *rule.deny):
                if isinstance(item, str) and item != "*" and item not in self.roles:
                    problems.append(f"{where}: no role named {item!r} in roles")
                if isinstance(item, GrantTemplate) and item.via == "issuer" and not self.issuer:
                    problems.append(f"{where}: a template via issuer needs an issuer section")
        if problems:  # all of them at once, so one edit-and-retry fixes everything
            raise ValueError("\n  ".join(problems))
        return self

    @cached_property
    def role_arns(self) -> dict[str, str]:
        return {name: role.arn for name, role in self.roles.items()}

    @cached_property
    def role_names_by_arn(self) -> dict[str, str]:
        return {role.arn: name for name, role in self.roles.items()}

    def via_of(self, item: Role | GrantTemplate) -> Via:
        """DESIGN.md, "Two ways to reach AWS": a role says which way it is reached; unset, the
        broker's own assertion when it has an issuer section, else the IdP's proof."""
        if item.via is not None:
            return item.via
        return "issuer" if self.issuer is not None else "idp"

    def account_name(self, account_id: str) -> str | None:
        acct = self.accounts.get(account_id)
        return acct.name if acct else None
