"""`broker serve --workers N`: worker processes share nothing, so N > 1 needs a shared store
(with memory:// an assertion would be accepted once per worker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fakes.servers import free_port, http_answers, read_text, running, wait_until

EXAMPLE = Path(__file__).resolve().parent.parent / "config/broker.example.yaml"
BROKER = [sys.executable, "-m", "broker"]


def _config(tmp_path: Path, store: dict[str, str]) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["store"] = store
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_several_workers_with_a_memory_store_are_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [*BROKER, "serve", "--config", str(EXAMPLE), "--workers", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--workers 3 needs a shared store" in done.stderr
    assert "once per worker" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.peers
@pytest.mark.redis
def test_several_workers_share_redis(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    config = _config(tmp_path, {"url": redis_url, "key_prefix": "workers:"})
    argv = [*BROKER, "serve", "--config", str(config), "--port", str(port), "--workers", "2"]
    log = tmp_path / "serve.log"
    with running(argv, output=log, stop_timeout=20) as proc:
        ready = wait_until(
            lambda: (
                (r := http_answers(f"http://127.0.0.1:{port}/readyz")()) and r.status_code == 200
            ),
            timeout=30,
            what="broker serve --workers 2",
            alive=proc,
            output=read_text(log),
        )
        assert ready
