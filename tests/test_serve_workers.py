"""`broker serve --workers N`: worker processes share nothing, so N > 1 needs a shared store
(with memory:// an assertion would be accepted once per worker)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.peers.redis_server import free_port

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


def test_several_workers_share_redis(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    config = _config(tmp_path, {"url": redis_url, "key_prefix": "workers:"})
    proc = subprocess.Popen(
        [*BROKER, "serve", "--config", str(config), "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "broker serve --workers 2 did not come up"
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(20)
        if proc.stdout:
            proc.stdout.close()
