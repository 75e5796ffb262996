"""`broker serve` as the README runs it: starts on the example config and answers probes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fakes.servers import free_port, read_text, running, wait_for_http

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.peers
def test_serve_starts_on_the_example_config(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "broker", "serve"]
    command += ["--config", str(ROOT / "config/broker.example.yaml"), "--port", str(port)]
    output = tmp_path / "serve.txt"
    with running(command, output=output, stop_timeout=10) as proc:
        r = wait_for_http(
            f"http://127.0.0.1:{port}/healthz",
            timeout=20,
            what="broker serve",
            alive=proc,
            output=read_text(output),
        )
        assert r.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        r = httpx.post(f"http://127.0.0.1:{port}/v1/credentials")
        assert r.status_code == 401
        assert r.json()["code"] == "MissingToken"


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: {bse_url: http://127.0.0.1:1}\nidentity_providers: {}\n")
    done = subprocess.run(
        [sys.executable, "-m", "broker", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "server.bse_url: unknown key" in done.stderr
    assert "Traceback" not in done.stderr
