"""Typed configuration: the YAML file (IdPs, accounts, roles, rules), validated once at startup."""

from broker.aws.arn import MAX_SESSION_SECONDS, MIN_SESSION_SECONDS, PROVIDER_ARN, ROLE_ARN
from broker.aws.partitions import Partition
from broker.config.base import NAME, Strict, check_url, is_loopback_url
from broker.config.idps import Algorithm, OidcIdp, SamlIdp
from broker.config.issuer import IssuerSettings, SigningKey, Via
from broker.config.loader import (
    accounts_file_path,
    load_config,
    parse_config,
    read_accounts_file,
    read_yaml,
)
from broker.config.model import Config, IdentityProvider
from broker.config.rules import Account, AccountsFile, GrantTemplate, Role, Rule
from broker.config.settings import AuditSettings, AwsSettings, ServerSettings
from broker.config.store import StoreSettings

__all__ = [
    "MAX_SESSION_SECONDS",
    "MIN_SESSION_SECONDS",
    "NAME",
    "PROVIDER_ARN",
    "ROLE_ARN",
    "Account",
    "AccountsFile",
    "Algorithm",
    "AuditSettings",
    "AwsSettings",
    "Config",
    "GrantTemplate",
    "IdentityProvider",
    "IssuerSettings",
    "OidcIdp",
    "Partition",
    "Role",
    "Rule",
    "SamlIdp",
    "ServerSettings",
    "SigningKey",
    "StoreSettings",
    "Strict",
    "Via",
    "accounts_file_path",
    "check_url",
    "is_loopback_url",
    "load_config",
    "parse_config",
    "read_accounts_file",
    "read_yaml",
]
