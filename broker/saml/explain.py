"""`broker explain --saml-response FILE`: the Identity a saved SAMLResponse proves, for diagnosis.

What is checked: everything the ACS checks about the document itself — size, base64, the
hardened screen, the issuer being a configured IdP, the signature against that IdP's
certificates, audience, Destination/Recipient, schema and AWS attributes.

What is NOT enforced, on purpose, because this runs offline on a copy and grants nothing:
- the replay cache (a copy of a response that was already used is still explained);
- InResponseTo (the AuthnRequest it answers was remembered by a server, not by this command).

The time window still applies (python3-saml reads the system clock inside its own
validation): explain a response within its few minutes of validity."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx

from broker.config import Config, SamlIdp
from broker.errors import ConfigError
from broker.identity import Identity
from broker.saml.settings import SamlIdpRuntime, load_idps, sp_endpoints
from broker.saml.verify import SamlVerifier
from broker.store import MemoryStore


def saml_identity(config: Config, path: str) -> Identity:
    try:
        saml_response = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the SAML response {path}: {exc}") from None
    idps = anyio.run(_load, config)
    verifier = SamlVerifier(
        idps,
        sp_endpoints(config.server),
        partition=config.aws.partition,
        store=MemoryStore(),
        roles_optional=config.issuer is not None,
        max_response_bytes=config.server.max_body_bytes,
    )
    return verifier.verify_document(saml_response, now=datetime.now(UTC))


async def _load(config: Config) -> dict[str, SamlIdpRuntime]:
    saml = {n: i for n, i in config.identity_providers.items() if isinstance(i, SamlIdp)}
    if not saml:
        raise ConfigError("no SAML identity provider is configured")
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as http:
        return await load_idps(saml, sp_endpoints(config.server), http)
