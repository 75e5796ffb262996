"""deploy/: the shipped configurations load, use the HA store, and tie readiness to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from broker.config import Config, parse_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def _yaml(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def _compose_config() -> Config:
    return parse_config(_yaml("broker.yaml"))


def _k8s_config() -> Config:
    return parse_config(yaml.safe_load(_yaml("k8s/configmap.yaml")["data"]["broker.yaml"]))


def test_compose_brokers_find_the_store_through_its_sentinels() -> None:
    store = _compose_config().store
    compose = _yaml("compose.yaml")
    services = compose["services"]
    assert store.sentinels is not None
    assert store.acks() == 1
    for host, port in store.sentinel_addresses():
        assert host in services, host
        assert str(port) in services[host]["expose"]
    for name in ("broker-a", "broker-b"):
        broker = services[name]
        assert "/readyz" in " ".join(broker["healthcheck"]["test"])
        assert {h for h, _ in store.sentinel_addresses()} <= set(broker["depends_on"])
    # Sentinel monitors the service name the broker asks for, with a quorum of two.
    sentinel_script = services["sentinel-a"]["command"][0]
    assert f"sentinel monitor {store.service_name} redis-0 6379 2" in sentinel_script
    # A master that restarts must not come back empty (and wipe its replicas).
    for name in ("redis-0", "redis-1", "redis-2"):
        assert "--appendonly" in services[name]["command"]


def test_kubernetes_uses_sentinel_over_tls_with_secrets_from_files() -> None:
    store = _k8s_config().store
    assert store.sentinels is not None
    assert store.uses_tls()
    assert store.acks() == 1
    secret_dir = Path("/run/secrets/broker")
    assert store.password_file is not None
    assert store.password_file.parent == secret_dir
    assert store.ca_file is not None
    assert store.ca_file.parent == secret_dir
    deployment = _yaml("k8s/deployment.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[str(secret_dir)]["readOnly"]
    secret_keys = set(_yaml("k8s/secret.example.yaml")["stringData"])
    assert {store.password_file.name, store.ca_file.name} <= secret_keys
    assert _yaml("k8s/pdb.yaml")["kind"] == "PodDisruptionBudget"
