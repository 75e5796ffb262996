"""Which front doors a config switches on, beyond the always-on OIDC API and probes."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from broker.config import Config, SamlIdp
from broker.runtime import Runtime, StartupHook


def _saml_idps(config: Config) -> dict[str, SamlIdp]:
    return {n: i for n, i in config.identity_providers.items() if isinstance(i, SamlIdp)}


def routers(config: Config) -> tuple[APIRouter, ...]:
    if not _saml_idps(config):
        return ()
    from broker import web
    from broker.saml import routes

    return (routes.router, web.router)


def startup_hooks(config: Config) -> tuple[StartupHook, ...]:
    if not _saml_idps(config):
        return ()
    return (_start_saml,)


async def _start_saml(rt: Runtime, app: FastAPI) -> None:
    """Load SAML IdPs (metadata, certificates) once; set up the verifier and browser sessions."""
    from broker.console_url.federation import hide_federation_urls
    from broker.saml.routes import EXTRAS_SAML, SamlFrontDoor
    from broker.saml.settings import load_idps, sp_endpoints
    from broker.saml.verify import SamlVerifier
    from broker.session import EXTRAS_KEY, SessionManager, server_secret

    config = rt.config
    sp = sp_endpoints(config.server)
    idps = await load_idps(_saml_idps(config), sp, rt.http)
    verifier = SamlVerifier(
        idps,
        sp,
        partition=config.aws.partition,
        store=rt.store,
        max_response_bytes=config.server.max_body_bytes,
    )
    rt.extras[EXTRAS_SAML] = SamlFrontDoor(
        sp, idps, verifier, single_role_direct=config.server.single_role_direct
    )
    rt.extras[EXTRAS_KEY] = SessionManager(
        rt.store,
        server_secret(config.server),
        max_seconds=config.server.session_max_seconds,
        secure=config.server.base_url.startswith("https://"),
    )
    hide_federation_urls(config.aws)
