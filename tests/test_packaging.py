"""The Dockerfile's steps without Docker (lock install, smoke import, start, /healthz), and the deploy examples' shape."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.config import parse_config
from tests.fakes.servers import free_port, read_text, running, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
SMOKE = (
    'python -c "import lxml.etree, xmlsec; '
    'assert lxml.etree.LIBXML_VERSION == xmlsec.get_libxml_version()"'
)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile line, continuation lines joined."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_smoke_test() -> None:
    steps = instructions()
    assert sum(1 for word, _ in steps if word == "FROM") >= 2, "multi-stage"
    final = final_stage()
    users = [args for word, args in final if word == "USER"]
    assert users, "the final stage sets USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(word == "HEALTHCHECK" and "/healthz" in args for word, args in final)
    assert ("RUN", SMOKE) in final, "the smoke import runs in the image that ships"
    runs = [args for word, args in steps if word == "RUN"]
    assert any("pip install -r requirements.lock" in r for r in runs)
    assert any("pip install --no-deps ." in r for r in runs)
    copied = " ".join(args for word, args in steps if word in {"COPY", "ADD"})
    for secret_ish in (".pem", ".key", "secrets", "config/"):
        assert secret_ish not in copied, f"nothing like {secret_ish} is baked into the image"


def test_lock_pins_lxml_and_xmlsec_as_a_pair() -> None:
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    pyproject = (ROOT / "pyproject.toml").read_text()
    for name in ("lxml", "xmlsec"):
        assert f'"{name}=={pins[name]}"' in pyproject, f"{name}: lock and pyproject agree"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the Dockerfile's install steps, from a copy of what it COPYs."""
    tmp = tmp_path_factory.mktemp("image")
    src = tmp / "src"
    src.mkdir()
    for name in ("requirements.lock", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "broker", src / "broker", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=src)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    run([*pip, "install", "-r", "requirements.lock"], cwd=src)
    run([*pip, "install", "--no-deps", "."], cwd=src)
    return venv


def run(cmd: list[str], cwd: Path) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{cmd}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.peers
def test_smoke_import_passes_in_the_installed_venv(installed: Path) -> None:
    cmd = shlex.split(SMOKE)
    cmd[0] = str(installed / "bin" / "python")
    run(cmd, cwd=installed)


@pytest.mark.peers
def test_installed_broker_serves_healthz(installed: Path) -> None:
    port = free_port()
    config = ROOT / "config" / "broker.example.yaml"
    command = [str(installed / "bin" / "broker"), "serve", "--config", str(config)]
    output = installed / "serve.txt"
    with running([*command, "--port", str(port)], cwd=installed, output=output) as proc:
        response = wait_for_http(
            f"http://127.0.0.1:{port}/healthz",
            timeout=30,
            what="the installed broker",
            alive=proc,
            output=read_text(output),
        )
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        # The installed copy, not the checkout, is what answered.
        where = run(
            [str(installed / "bin" / "python"), "-c", "import broker; print(broker.__file__)"],
            cwd=installed,
        )
        assert str(installed) in where


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def k8s() -> dict[str, dict[str, Any]]:
    docs = [d for p in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in load_all(p)]
    return {d["kind"]: d for d in docs}


def test_kubernetes_manifests() -> None:
    kinds = k8s()
    assert set(kinds) >= {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Secret"}
    deployment = kinds["Deployment"]["spec"]
    assert deployment["replicas"] >= 2
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert all(m["readOnly"] for m in container["volumeMounts"] if m["name"] != "tmp")
    labels = deployment["template"]["metadata"]["labels"]
    pdb = kinds["PodDisruptionBudget"]
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < deployment["replicas"]
    assert kinds["Service"]["spec"]["selector"].items() <= labels.items()
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]
    assert volumes["secrets"]["secret"]["secretName"] == kinds["Secret"]["metadata"]["name"]
    config = parse_config(yaml.safe_load(kinds["ConfigMap"]["data"]["broker.yaml"]))
    assert not config.store.is_memory()  # the HA store: tests/test_deploy.py
    secret_file = config.server.session_secret_file
    assert secret_file is not None
    assert secret_file.parent == Path(volumes_mount(container, "secrets"))
    assert secret_file.name in kinds["Secret"]["stringData"]


def volumes_mount(container: dict[str, Any], name: str) -> str:
    (path,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == name]
    return str(path)


def test_compose_two_replicas_redis_sentinel_and_tls_proxy() -> None:
    (compose,) = load_all(DEPLOY / "compose.yaml")
    services = compose["services"]
    brokers = {n: s for n, s in services.items() if n.startswith("broker")}
    assert len(brokers) == 2
    for service in brokers.values():
        assert "./broker.yaml:/etc/broker/broker.yaml:ro" in service["volumes"]
        assert all(v.endswith(":ro") for v in service["volumes"])
        assert service["read_only"] is True
        assert all(d["condition"] == "service_healthy" for d in service["depends_on"].values())
    assert {"redis-0", "sentinel-a"} <= set(services)
    proxy = services["proxy"]
    assert "443:443" in proxy["ports"]
    assert all(v.endswith(":ro") for v in proxy["volumes"])
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "listen 443 ssl" in nginx
    for name in brokers:
        assert f"server {name}:8080" in nginx
    config = parse_config(yaml.safe_load((DEPLOY / "broker.yaml").read_text()))
    assert config.store.sentinels is not None  # the HA store: tests/test_deploy.py
    assert config.server.base_url.startswith("https://")
