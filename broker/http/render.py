"""Responses that carry credentials (JSON, credential_process, shell, container) and HTML pages."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from broker.identity import Credentials

# Anything that carries a credential, a token or a sign-in URL is never cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

templates = Environment(
    loader=PackageLoader("broker", "templates"), autoescape=select_autoescape(), enable_async=False
)


def page(
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **more: Any,
) -> HTMLResponse:
    html = templates.get_template(name).render(**(context or {}), **more)
    return HTMLResponse(html, status_code=status, headers=headers)


def process_json(creds: Credentials) -> dict[str, Any]:
    """The credential_process contract (Version 1)."""
    return {
        "Version": 1,
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "SessionToken": creds.session_token,
        "Expiration": creds.expiration_iso(),
    }


def shell_exports(creds: Credentials) -> str:
    lines = [
        f"export AWS_ACCESS_KEY_ID={shlex.quote(creds.access_key_id)}",
        f"export AWS_SECRET_ACCESS_KEY={shlex.quote(creds.secret_access_key)}",
        f"export AWS_SESSION_TOKEN={shlex.quote(creds.session_token)}",
        f"export AWS_CREDENTIAL_EXPIRATION={creds.expiration_iso()}",
    ]
    return "\n".join(lines) + "\n"


def render_credentials(creds: Credentials, role_arn: str, fmt: str) -> Response:
    """STS-shaped JSON, credential_process Version 1, or shell exports."""
    if fmt == "process":
        return JSONResponse(process_json(creds), headers=NO_STORE)
    if fmt == "env":
        return PlainTextResponse(shell_exports(creds), headers=NO_STORE)
    return JSONResponse(
        {
            "Credentials": {
                "AccessKeyId": creds.access_key_id,
                "SecretAccessKey": creds.secret_access_key,
                "SessionToken": creds.session_token,
                "Expiration": creds.expiration_iso(),
            },
            "AssumedRoleUser": {
                "Arn": creds.assumed_role_arn,
                "AssumedRoleId": creds.assumed_role_id,
            },
            "RoleArn": role_arn,
        },
        headers=NO_STORE,
    )


def render_container(creds: Credentials, role_arn: str) -> Response:
    """The AWS SDKs' container credential provider contract."""
    body = {
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "Token": creds.session_token,
        "Expiration": creds.expiration_iso(),
        "RoleArn": role_arn,
    }
    return JSONResponse(body, headers=NO_STORE)
