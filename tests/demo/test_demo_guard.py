"""The demo stand-ins cannot be switched on from production: never imported, no config key for them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.config import load_config, parse_config
from broker.errors import ConfigError
from broker_demo.idp import generate_key
from tests.fakes.servers import free_port, read_text, running, wait_for_http

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "broker.example.yaml"

# Runs in a fresh interpreter: build the app the way `broker serve` does (app_from_env, so
# broker.app picks the front doors), serve it with uvicorn, hit /healthz, then list every
# broker_demo* module that got imported along the way.
_SERVE_AND_LIST = textwrap.dedent(
    """
    import json, sys
    import httpx
    from broker.app import app_from_env
    from tests.fakes.servers import serve_app

    with serve_app(app_from_env(), timeout=30) as url:
        status = httpx.get(f"{url}/healthz").status_code
        metadata = httpx.get(f"{url}/saml/metadata").status_code
    demo = sorted(m for m in sys.modules if m == "broker_demo" or m.startswith("broker_demo."))
    print(json.dumps({"healthz": status, "demo_modules": demo, "saml_metadata": metadata}))
    """
)


def _with_saml(tmp_path: Path) -> Path:
    """The example config plus a SAML IdP, so the SAML and browser front doors load too."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["identity_providers"]["corp"] = {
        "type": "saml",
        "entity_id": "https://idp.example.com/saml",
        "sso_url": "https://idp.example.com/sso",
        "certificates": [generate_key("guard test idp")[1]],
    }
    path = tmp_path / "with-saml.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.peers
@pytest.mark.parametrize("which", ["example", "example+saml"])
def test_serving_the_app_never_imports_broker_demo(tmp_path: Path, which: str) -> None:
    config = EXAMPLE if which == "example" else _with_saml(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_AND_LIST],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        # The checkout on the path for tests.fakes; broker_demo lives elsewhere (demo/).
        env={**_clean_env(), "BROKER_CONFIG": str(config), "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["healthz"] == 200
    assert result["demo_modules"] == []
    # The SAML front door was really loaded (and really absent without a SAML IdP).
    assert result["saml_metadata"] == (200 if which == "example+saml" else 404)


@pytest.mark.peers
def test_broker_serve_command_never_imports_broker_demo(tmp_path: Path) -> None:
    """The CLI registers `broker demo` in every process, but imports broker_demo only when
    the demo runs: the real `broker serve` command loads no broker_demo module at all."""
    port = free_port()
    log = tmp_path / "importtime.txt"
    command = [sys.executable, "-X", "importtime", "-m", "broker", "serve"]
    command += ["--config", str(EXAMPLE), "--port", str(port)]
    with running(command, output=log, env=_clean_env()) as proc:
        healthz = wait_for_http(
            f"http://127.0.0.1:{port}/healthz",
            timeout=60,
            what="broker serve",
            alive=proc,
            output=read_text(log),
        )
        assert healthz.is_success
    imported = {line.rsplit("|", 1)[-1].strip() for line in log.read_text().splitlines()}
    assert "broker.oidc.routes" in imported, "importtime saw the server's imports"
    assert {m for m in imported if m == "broker_demo" or m.startswith("broker_demo.")} == set()


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BROKER_"))}


def _example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


REFUSED = {
    "demo": ({"demo": {"enabled": True}}, "demo: unknown key"),
    "aws.standin": ({"aws": {"standin": True}}, "aws.standin: unknown key"),
    "aws.demo": ({"aws": {"demo": True}}, "aws.demo: unknown key"),
    "server.demo": ({"server": {"demo": True}}, "server.demo: unknown key"),
    "idp type demo": (
        {"identity_providers": {"fake": {"type": "demo"}}},
        "identity_providers.fake",
    ),
}


@pytest.mark.parametrize(("extra", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_a_config_naming_the_demo_is_refused(extra: dict[str, Any], message: str) -> None:
    data = _example()
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert message in caught.value.detail


def test_broker_serve_refuses_a_demo_key_naming_it(tmp_path: Path) -> None:
    data = _example()
    data["aws"]["standin"] = True
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError):
        load_config(path)
    done = subprocess.run(
        [sys.executable, "-m", "broker", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_clean_env(),
    )
    assert done.returncode == 2
    assert "aws.standin: unknown key" in done.stderr
    assert "Traceback" not in done.stderr
