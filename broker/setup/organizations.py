"""AWS Organizations, read only: every account's id, name and status, from all ListAccounts pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import botocore.config
import botocore.exceptions
import botocore.parsers

from broker.setup import SetupError

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient

# Organizations has one endpoint per partition, in this Region (AWS General Reference,
# "AWS Organizations endpoints and quotas").
HOME_REGION = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-northwest-1"}
# What to do about the refusals an administrator meets, by the code Organizations answers.
_REMEDY = {
    "AccessDeniedException": "ListAccounts needs the organization's management account or a "
    "delegated administrator, with organizations:ListAccounts (pass --profile)",
    "AWSOrganizationsNotInUseException": "these credentials' account is in no organization; "
    "name accounts under `accounts:` by hand",
}


@dataclass(frozen=True, slots=True)
class OrgAccount:
    id: str
    name: str
    # ACTIVE, SUSPENDED or PENDING_CLOSURE (Organizations API reference, Account).
    status: str

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"


def client(
    *, endpoint_url: str | None, region: str | None, profile: str | None, partition: str = "aws"
) -> OrganizationsClient:
    """An Organizations client from the standard chain (AWS_PROFILE, environment, SSO, role)."""
    config = botocore.config.Config(
        connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 4}
    )
    try:
        session = boto3.Session(profile_name=profile, region_name=region or HOME_REGION[partition])
        return session.client("organizations", endpoint_url=endpoint_url, config=config)
    except botocore.exceptions.BotoCoreError as exc:  # an unknown profile, a bad endpoint
        raise SetupError(f"Organizations: {' '.join(str(exc).split())}") from None


def list_accounts(org: OrganizationsClient) -> list[OrgAccount]:
    """Every account of the organization: ListAccounts returns a page at a time (at most 20)."""
    accounts: dict[str, OrgAccount] = {}
    try:
        for page in org.get_paginator("list_accounts").paginate():
            for item in page.get("Accounts", []):
                acct = OrgAccount(
                    str(item["Id"]), str(item.get("Name", "")), str(item.get("Status", "ACTIVE"))
                )
                accounts[acct.id] = acct
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "Error"))
        message = " ".join(str(err.get("Message", "")).split())
        remedy = _REMEDY.get(code)
        raise SetupError(
            f"Organizations ListAccounts: {code}: {message}" + (f" ({remedy})" if remedy else "")
        ) from None
    except botocore.exceptions.NoCredentialsError:
        raise SetupError(
            "no AWS credentials: set AWS_PROFILE or the usual AWS_* variables, or pass --profile"
        ) from None
    except (botocore.exceptions.BotoCoreError, botocore.parsers.ResponseParserError) as exc:
        raise SetupError(f"Organizations ListAccounts: {' '.join(str(exc).split())}") from None
    return sorted(accounts.values(), key=lambda a: a.id)
