"""`broker demo`: the broker, a demo IdP and OIDC issuer, and the AWS stand-in, all on loopback."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

# Only what `broker --help` needs is imported here: the CLI registers this command in every
# process, including `broker serve`, which must never load the stand-ins. They are imported
# when the demo actually runs.
if TYPE_CHECKING:
    from broker.config import Config
    from broker_demo.aws import AwsStandIn
    from broker_demo.idp import DemoIdp
    from broker_demo.issuer import DemoIssuer

SAML_IDP, OIDC_IDP = "demo-idp", "demo-ci"


def demo_config(
    *, base_url: str, standin_url: str, idp: DemoIdp, issuer_url: str, secret: str
) -> dict[str, Any]:
    """The demo's configuration, in the same shape as a production YAML file."""
    from broker_demo.idp import ACCOUNTS, PRODUCTION, STAGING
    from broker_demo.issuer import AUDIENCE, REF, REPOSITORY

    roles = {
        "prod-admin": (PRODUCTION, "Admin", "Full access (demo)"),
        "prod-readonly": (PRODUCTION, "ReadOnly", "Look, don't touch (demo)"),
        "staging-readonly": (STAGING, "ReadOnly", "Look, don't touch (demo)"),
        "staging-developer": (STAGING, "Developer", "Build and deploy (demo)"),
        "ci-deploy": (PRODUCTION, "CiDeploy", "What the demo repo's main branch deploys with"),
    }
    group_rules = {
        "admins": ["prod-admin", "staging-readonly"],
        "developers": ["staging-developer"],
        "auditors": ["prod-readonly", "staging-readonly"],
    }
    rules: list[dict[str, Any]] = [
        {
            "name": f"group-{group}",
            "idp": SAML_IDP,
            "when": {"claim": "groups", "contains": group},
            "grant": granted,
        }
        for group, granted in group_rules.items()
    ]
    rules.append(
        {
            "name": "app-main-deploys",
            "idp": OIDC_IDP,
            "when": {
                "all": [
                    {"claim": "repository", "equals": REPOSITORY},
                    {"claim": "ref", "equals": REF},
                ]
            },
            "grant": ["ci-deploy"],
        }
    )
    return {
        "server": {"base_url": base_url, "session_secret": secret},
        "aws": {
            "sts_endpoint": standin_url + "/",
            "federation_endpoint": standin_url + "/federation",
            "sts_max_attempts": 1,
        },
        "store": {"url": "memory://"},
        "audit": {"path": "-"},
        "identity_providers": {
            SAML_IDP: {
                "type": "saml",
                "entity_id": idp.entity_id,
                "sso_url": idp.sso_url,
                "certificates": [idp.cert_pem],
                # Only roles a rule grants, even though the IdP signs them too.
                "trust_assertion_roles": False,
            },
            OIDC_IDP: {
                "type": "oidc",
                "issuer": issuer_url,
                "audiences": [AUDIENCE],
                "algorithms": ["RS256"],
                "session_name": "ci-{run_id}",
            },
        },
        "accounts": {acct: {"name": name} for acct, name in ACCOUNTS.items()},
        "roles": {
            name: {"arn": f"arn:aws:iam::{acct}:role/{role}", "description": text}
            for name, (acct, role, text) in roles.items()
        },
        "rules": rules,
    }


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _require_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"broker demo binds loopback only, not {host!r}")


def _stop_on_sigterm() -> None:
    def stop(signum: int, frame: object) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def run_demo(host: str = "127.0.0.1", port: int = 8080, open_browser: bool = False) -> int:
    """Start everything, print where to go, run until Ctrl-C. Returns an exit status."""
    _require_loopback(host)
    from broker.app import create_app
    from broker.config import parse_config
    from broker.logs import configure_logging
    from broker_demo.aws import AwsStandIn, serve
    from broker_demo.idp import ACCOUNTS, PRODUCTION, DemoIdp
    from broker_demo.issuer import AUDIENCE, DemoIssuer
    from broker_demo.serving import serve_asgi

    base_url = f"http://{host}:{port}"
    idp_port, issuer_port = free_port(host), free_port(host)
    idp = DemoIdp(base_url=f"http://{host}:{idp_port}", acs_url=base_url + "/saml/acs")
    issuer = DemoIssuer(issuer=f"http://{host}:{issuer_port}")
    standin = AwsStandIn()
    configure_logging("info")
    with contextlib.ExitStack() as stack:
        standin_url = stack.enter_context(serve(standin, host, 0))
        stack.enter_context(serve_asgi(idp.app, host, idp_port))
        stack.enter_context(serve_asgi(issuer.app, host, issuer_port))
        for account in ACCOUNTS:
            standin.register_saml_provider(
                SAML_IDP, [idp.cert_pem], account, entity_id=idp.entity_id
            )
        standin.register_oidc_provider(issuer.issuer, [AUDIENCE], PRODUCTION)
        data = demo_config(
            base_url=base_url,
            standin_url=standin_url,
            idp=idp,
            issuer_url=issuer.issuer,
            secret=secrets.token_urlsafe(32),
        )
        config = parse_config(data)
        register_roles(standin, config)
        config_file = _write_config(stack, data)
        app = create_app(config)
        try:
            stack.enter_context(serve_asgi(app, host, port))
        except OSError as exc:
            print(f"broker demo: cannot listen on {base_url}: {exc.strerror}", file=sys.stderr)
            print("broker demo: pick another port with --port", file=sys.stderr)
            return 1
        except RuntimeError:
            print("broker demo: the broker did not start; see the log above", file=sys.stderr)
            return 1
        print(_banner(config, idp, issuer, standin_url, config_file), flush=True)
        if open_browser:
            webbrowser.open(idp.base_url + "/")
        _stop_on_sigterm()
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    print("broker demo: stopped", flush=True)
    return 0


def register_roles(standin: AwsStandIn, config: Config) -> None:
    """Each demo role in the stand-in's IAM, trusting what `broker setup trust-policy` prints
    for it: the SAML roles trust the demo IdP for assertions sent to the broker's ACS URL
    (SAML:aud); the CI role trusts the demo issuer for its audience. Its rule tests
    `repository` and `ref`, which IAM cannot see, so that policy is the
    `--allow-any-subject` one: fine for a demo, refused by default for a real setup."""
    from broker.setup.trust_policy import trust_policy

    for name, role in config.roles.items():
        document = trust_policy(config, name, allow_any_subject=True).document
        standin.register_role(role.arn, document, max(3600, role.max_session_seconds))


def _write_config(stack: contextlib.ExitStack, data: dict[str, Any]) -> Path:
    """The running configuration as YAML, to read alongside the demo (gone when it stops)."""
    import yaml

    directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="broker-demo-")))
    path = directory / "demo-config.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# broker demo: generated at start; the demo IdP and issuer keys are fresh.\n")
        yaml.safe_dump(data, f, sort_keys=False, width=100)
    return path


def curl_line(broker_url: str, issuer_url: str) -> str:
    """A copy-pasteable command: mint a demo CI token, trade it for credentials."""
    token = f"$(curl -s -X POST {issuer_url}/token -d subject=demo)"
    return f'curl -s -X POST -H "Authorization: Bearer {token}" {broker_url}/v1/credentials'


def broker_command() -> str:
    """`broker` as this shell can run it: by name when PATH finds this one, else its path."""
    beside = Path(sys.executable).parent / "broker"
    if not beside.exists() or shutil.which("broker") == str(beside):
        return "broker"
    return str(beside)


def _banner(
    config: Config, idp: DemoIdp, issuer: DemoIssuer, standin_url: str, config_file: Path
) -> str:
    broker_url = config.server.base_url
    cli = broker_command()
    return "\n".join(
        [
            "",
            "broker demo: everything runs on this machine; nothing here talks to AWS.",
            "",
            "  1. Sign in as a demo user (alice, bob or carol), pick a role, land in the console:",
            f"     Open {idp.base_url}/",
            f"     (or {broker_url}/ , which sends you through the IdP and back)",
            "",
            "  2. Workload credentials for a CI job, with a freshly minted demo token:",
            f"     {curl_line(broker_url, issuer.issuer)}",
            "",
            "  3. The command line, signed in through the same browser sign-in (nothing scraped):",
            f"     export AWS_CONFIG_FILE={config_file.parent / 'aws-config'}"
            "   # not your own ~/.aws/config",
            f"     {cli} login --url {broker_url}",
            f"     {cli} configure --url {broker_url} --region us-east-1",
            f"     aws sts get-caller-identity --profile <role> --endpoint-url {standin_url}",
            "     (the demo's roles take the IdP's own assertion, which AWS redeems for 5 minutes",
            "     after sign-in; then `broker login` again. Roles `via: issuer` last the session.)",
            "",
            f"  broker         {broker_url}",
            f"  demo IdP       {idp.base_url}  (SAML; not a real IdP)",
            f"  demo issuer    {issuer.issuer}  (OIDC; not a real IdP)",
            f"  AWS stand-in   {standin_url}  (STS, federation, console; not AWS)",
            f"  config         {config_file}",
            "",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


def add_demo_command(sub: argparse._SubParsersAction[Any]) -> None:
    """Register `broker demo` on the top-level parser."""
    demo = sub.add_parser(
        "demo", help="try the broker on this machine: demo IdP, demo CI issuer, AWS stand-in"
    )
    demo.add_argument("--port", type=int, default=8080, help="the broker's port (default 8080)")
    demo.add_argument("--open", action="store_true", help="open the sign-in page in a browser")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    return run_demo(port=args.port, open_browser=args.open)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m broker_demo.run")
    add_demo_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["demo", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
