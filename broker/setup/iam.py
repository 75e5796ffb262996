"""IAM identity providers: check IAM's limits, plan the change, apply it with boto3, read it back."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions
import botocore.parsers

from broker.setup import SetupError

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

T = TypeVar("T")
# IAM API reference, CreateOpenIDConnectProvider / CreateSAMLProvider.
MAX_URL = 255
MAX_THUMBPRINTS = 5
MAX_CLIENT_IDS = 100
MAX_CLIENT_ID = 255
SAML_NAME = re.compile(r"[\w._-]{1,128}")
SAML_DOC_MIN, SAML_DOC_MAX = 1000, 10_000_000
THUMBPRINT = re.compile(r"[0-9a-f]{40}")


def client(*, endpoint_url: str | None, region: str | None, profile: str | None) -> IAMClient:
    """An IAM client from the standard chain (AWS_PROFILE, environment, SSO, instance role)."""
    session = boto3.Session(profile_name=profile, region_name=region or "us-east-1")
    config = botocore.config.Config(
        connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 4}
    )
    return session.client("iam", endpoint_url=endpoint_url, config=config)


def call(what: str, fn: Callable[..., T], **kwargs: Any) -> T:
    """Run one IAM call, turning botocore's failures into a sentence."""
    try:
        return fn(**kwargs)
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        raise SetupError(
            f"IAM {what}: {err.get('Code', 'Error')}: {err.get('Message', '')}"
        ) from None
    except botocore.exceptions.NoCredentialsError:
        raise SetupError(
            "no AWS credentials: set AWS_PROFILE or the usual AWS_* variables, or run where a role is available"
        ) from None
    except (botocore.exceptions.BotoCoreError, botocore.parsers.ResponseParserError) as exc:
        raise SetupError(f"IAM {what}: {exc}") from None


@dataclass
class Plan:
    kind: str  # "oidc-provider" | "saml-provider"
    target: str  # issuer URL or provider name
    arn: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    applied: bool = False
    confirmed: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "arn": self.arn,
            "steps": [{"action": a, "detail": d} for a, d in self.steps]
            or [{"action": "nothing to do", "detail": ""}],
            "notes": self.notes,
            "errors": self.errors,
            "applied": self.applied,
            "confirmed": self.confirmed,
        }


# -- OIDC ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OidcState:
    client_ids: tuple[str, ...]
    thumbprints: tuple[str, ...]


def validate_oidc(issuer: str, client_ids: Sequence[str], thumbprints: Sequence[str]) -> list[str]:
    """IAM's own limits, checked here because a local stand-in (moto) accepts anything."""
    errors = []
    parts = urlsplit(issuer)
    if parts.scheme != "https" or not parts.hostname:
        errors.append(f"issuer {issuer!r}: IAM requires an https:// URL")
    if parts.port is not None or (parts.netloc.endswith(":")):
        errors.append(f"issuer {issuer!r}: IAM does not accept a port")
    if parts.query or parts.fragment or "?" in issuer:
        errors.append(f"issuer {issuer!r}: IAM does not accept a query or fragment")
    if parts.username or parts.password:
        errors.append(f"issuer {issuer!r}: must not contain credentials")
    if len(issuer) > MAX_URL:
        errors.append(f"issuer is {len(issuer)} characters; IAM allows {MAX_URL}")
    if len(set(client_ids)) > MAX_CLIENT_IDS:
        errors.append(
            f"{len(set(client_ids))} client IDs; IAM allows {MAX_CLIENT_IDS} per provider"
        )
    for cid in client_ids:
        if not 1 <= len(cid) <= MAX_CLIENT_ID:
            errors.append(f"client ID {cid[:40]!r}…: IAM accepts 1 to {MAX_CLIENT_ID} characters")
    if len(set(thumbprints)) > MAX_THUMBPRINTS:
        errors.append(f"{len(set(thumbprints))} thumbprints; IAM allows {MAX_THUMBPRINTS}")
    for tp in thumbprints:
        if not THUMBPRINT.fullmatch(tp):
            errors.append(f"thumbprint {tp!r}: expected 40 hex characters (SHA-1)")
    return errors


def provider_path(issuer: str) -> str:
    """IAM names an OIDC provider by its URL without the scheme (and no trailing slash)."""
    return issuer.split("://", 1)[-1].rstrip("/")


def find_oidc(iam: IAMClient, issuer: str) -> tuple[str, OidcState] | None:
    suffix = ":oidc-provider/" + provider_path(issuer)
    listed = call("ListOpenIDConnectProviders", iam.list_open_id_connect_providers)
    for item in listed.get("OpenIDConnectProviderList", []):
        arn = item.get("Arn", "")
        if arn.endswith(suffix):
            return arn, read_oidc(iam, arn)
    return None


def read_oidc(iam: IAMClient, arn: str) -> OidcState:
    got = call(
        "GetOpenIDConnectProvider", iam.get_open_id_connect_provider, OpenIDConnectProviderArn=arn
    )
    return OidcState(
        tuple(got.get("ClientIDList", [])), tuple(t.lower() for t in got.get("ThumbprintList", []))
    )


def plan_oidc(
    issuer: str,
    current: tuple[str, OidcState] | None,
    client_ids: Sequence[str],
    thumbprints: Sequence[str] | None,
) -> Plan:
    """What to change so IAM has these client IDs (and, unless None, exactly these thumbprints)."""
    wanted = list(dict.fromkeys(client_ids))
    tps = None if thumbprints is None else list(dict.fromkeys(t.lower() for t in thumbprints))
    plan = Plan("oidc-provider", issuer, current[0] if current else None)
    plan.errors = validate_oidc(issuer, wanted, tps or [])
    if current is None:
        shown = ", ".join(tps) if tps else "none (IAM verifies against its trusted root CAs)"
        plan.steps.append(("create", f"client IDs {', '.join(wanted)}; thumbprints {shown}"))
        return plan
    state = current[1]
    missing = [c for c in wanted if c not in state.client_ids]
    if len(state.client_ids) + len(missing) > MAX_CLIENT_IDS:
        plan.errors.append(f"adding {len(missing)} client IDs would exceed IAM's {MAX_CLIENT_IDS}")
    plan.steps += [("add client ID", c) for c in missing]
    extra = [c for c in state.client_ids if c not in wanted]
    if extra:
        plan.notes.append(f"client IDs already registered and left in place: {', '.join(extra)}")
    if tps is None:
        plan.notes.append("thumbprints left as they are (--thumbprint none)")
    elif set(tps) != set(state.thumbprints):
        before = ", ".join(state.thumbprints) or "none"
        plan.steps.append(("replace thumbprints", f"{before} → {', '.join(tps) or 'none'}"))
    return plan


def apply_oidc(
    iam: IAMClient, plan: Plan, client_ids: Sequence[str], thumbprints: Sequence[str] | None
) -> None:
    wanted = list(dict.fromkeys(client_ids))
    tps = None if thumbprints is None else list(dict.fromkeys(t.lower() for t in thumbprints))
    for action, detail in plan.steps:
        if action == "create":
            kwargs: dict[str, Any] = {"Url": plan.target.rstrip("/"), "ClientIDList": wanted}
            if tps:
                kwargs["ThumbprintList"] = tps
            made = call(
                "CreateOpenIDConnectProvider", iam.create_open_id_connect_provider, **kwargs
            )
            plan.arn = made["OpenIDConnectProviderArn"]
        elif action == "add client ID":
            call(
                "AddClientIDToOpenIDConnectProvider",
                iam.add_client_id_to_open_id_connect_provider,
                OpenIDConnectProviderArn=plan.arn,
                ClientID=detail,
            )
        elif action == "replace thumbprints":
            call(
                "UpdateOpenIDConnectProviderThumbprint",
                iam.update_open_id_connect_provider_thumbprint,
                OpenIDConnectProviderArn=plan.arn,
                ThumbprintList=tps,
            )
    plan.applied = True
    assert plan.arn is not None
    state = read_oidc(iam, plan.arn)
    lacking = [c for c in wanted if c not in state.client_ids]
    if lacking:
        plan.errors.append(f"read back: client IDs missing: {', '.join(lacking)}")
    if tps is not None and set(tps) != set(state.thumbprints):
        plan.errors.append(f"read back: thumbprints are {', '.join(state.thumbprints) or 'none'}")
    plan.confirmed = not plan.errors


# -- SAML ----------------------------------------------------------------------------------


def validate_saml(name: str, document: str) -> list[str]:
    errors = []
    if not SAML_NAME.fullmatch(name):
        errors.append(f"name {name!r}: IAM allows 1 to 128 of letters, digits, '_', '.', '-'")
    if not SAML_DOC_MIN <= len(document) <= SAML_DOC_MAX:
        errors.append(
            f"metadata is {len(document)} characters; IAM accepts {SAML_DOC_MIN} to {SAML_DOC_MAX}"
        )
    return errors


def find_saml(iam: IAMClient, name: str) -> tuple[str, str] | None:
    listed = call("ListSAMLProviders", iam.list_saml_providers)
    for item in listed.get("SAMLProviderList", []):
        arn = item.get("Arn", "")
        if arn.endswith(f":saml-provider/{name}"):
            got = call("GetSAMLProvider", iam.get_saml_provider, SAMLProviderArn=arn)
            return arn, got.get("SAMLMetadataDocument", "")
    return None


def plan_saml(name: str, current: tuple[str, str] | None, document: str) -> Plan:
    plan = Plan("saml-provider", name, current[0] if current else None)
    plan.errors = validate_saml(name, document)
    if current is None:
        plan.steps.append(("create", f"SAML provider {name}"))
    elif current[1].strip() != document.strip():
        plan.steps.append(("update metadata", f"{len(current[1])} → {len(document)} characters"))
    return plan


def apply_saml(iam: IAMClient, plan: Plan, document: str) -> None:
    for action, _ in plan.steps:
        if action == "create":
            made = call(
                "CreateSAMLProvider",
                iam.create_saml_provider,
                Name=plan.target,
                SAMLMetadataDocument=document,
            )
            plan.arn = made["SAMLProviderArn"]
        elif action == "update metadata":
            call(
                "UpdateSAMLProvider",
                iam.update_saml_provider,
                SAMLProviderArn=plan.arn,
                SAMLMetadataDocument=document,
            )
    plan.applied = True
    found = find_saml(iam, plan.target)
    if found is None or found[1].strip() != document.strip():
        plan.errors.append("read back: IAM's metadata document differs from the one sent")
    plan.confirmed = not plan.errors
