"""AWS partitions: the hosts and endpoints of aws, aws-us-gov and aws-cn, in one table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Partition = Literal["aws", "aws-us-gov", "aws-cn"]


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    name: Partition
    # The console's host: sign-in destinations must be on it or a regional subdomain.
    console_host: str
    # The sign-in host: the federation endpoint (getSigninToken, Action=login) and the
    # SAML endpoint AWS's own IdP integrations post to (the audience/recipient of assertions).
    signin_host: str
    # STS regional endpoints: https://sts.<region>.<dns_suffix>/
    dns_suffix: str

    @property
    def federation_url(self) -> str:
        return f"https://{self.signin_host}/federation"

    @property
    def saml_endpoint(self) -> str:
        """The sign-in SAML endpoint: Destination/Recipient of assertions meant for AWS, and
        the value of the `SAML:aud` condition key when AWS itself receives the assertion."""
        return f"https://{self.signin_host}/saml"

    def sts_url(self, region: str) -> str:
        return f"https://sts.{region}.{self.dns_suffix}/"


# AWS General Reference, "AWS sign-in endpoints" and "AWS STS endpoints".
PARTITIONS: dict[str, PartitionInfo] = {
    "aws": PartitionInfo("aws", "console.aws.amazon.com", "signin.aws.amazon.com", "amazonaws.com"),
    "aws-us-gov": PartitionInfo(
        "aws-us-gov", "console.amazonaws-us-gov.com", "signin.amazonaws-us-gov.com", "amazonaws.com"
    ),
    "aws-cn": PartitionInfo(
        "aws-cn", "console.amazonaws.cn", "signin.amazonaws.cn", "amazonaws.com.cn"
    ),
}
# The audience AWS's SAML service provider declares in its metadata.
AWS_SAML_AUDIENCE = "urn:amazon:webservices"


def partition(name: str) -> PartitionInfo:
    return PARTITIONS[name]
