"""Two broker replicas on Redis Sentinel while the master dies: sign-ins get a 503 (never a
500, never a hang) until a replica is promoted; then an assertion used before the failover
is still a replay, and the browser session opened before it still works."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from broker.app import create_app
from broker.config import StoreSettings
from broker_demo.aws import AwsStandIn, serve
from tests.fakes.saml_idp import TestIdp
from tests.fakes.saml_world import ADMIN, BASE_URL, DEPLOYER, IDP_ENTITY, PROD, world_config
from tests.fakes.servers import serve_app, wait_until
from tests.peers.redis_sentinel import SentinelSet

pytestmark = [pytest.mark.peers, pytest.mark.redis]

JSON = {"accept": "application/json"}


def test_sentinel_failover_behind_two_replicas(
    tmp_path: Path, sentinel_factory: Callable[[], SentinelSet]
) -> None:
    s = sentinel_factory()
    idp = TestIdp(tmp_path / "idp", acs_url=BASE_URL + "/saml/acs", entity_id=IDP_ENTITY)
    standin = AwsStandIn()
    with ExitStack() as stack:
        standin_url = stack.enter_context(serve(standin))
        provider = standin.register_saml_provider("corp", [idp.key.cert_pem], PROD)
        pairs = [f"{DEPLOYER},{provider}", f"{ADMIN},{provider}"]
        config = world_config(
            idp,
            standin_url,
            tmp_path / "audit.jsonl",
            IDP_ENTITY + "/sso",
            session_secret="shared-by-every-replica-" + "x" * 16,
        ).model_copy(
            update={
                "store": StoreSettings(
                    sentinels=s.addresses,
                    service_name=s.service,
                    key_prefix="failover:",
                    timeout_seconds=1,
                )
            }
        )
        a, b = (stack.enter_context(serve_app(create_app(config))) for _ in range(2))
        used = idp.b64(roles=pairs)
        with httpx.Client(base_url=a, follow_redirects=False) as browser:
            assert browser.post("/saml/acs", data={"SAMLResponse": used}).status_code == 303
            cookies = browser.cookies

        old = s.kill_master()
        outage = httpx.post(
            f"{b}/saml/acs", data={"SAMLResponse": idp.b64(roles=pairs)}, headers=JSON, timeout=10
        )
        assert outage.status_code == 503, outage.text
        assert outage.json()["code"] == "StoreUnavailable"
        assert outage.headers["retry-after"] == "5"
        assert httpx.get(f"{a}/readyz", timeout=10).status_code == 503

        s.wait_promoted(old)
        wait_until(
            lambda: httpx.get(f"{b}/readyz", timeout=10).status_code == 200,
            timeout=30,
            what="the broker following the new master",
            interval=0.2,
        )

        again = httpx.post(f"{b}/saml/acs", data={"SAMLResponse": used}, headers=JSON, timeout=10)
        assert again.status_code == 401, again.text
        assert again.json()["code"] == "ReplayDetected"
        with httpx.Client(base_url=b, cookies=cookies, follow_redirects=False) as browser:
            page = browser.get("/", headers={"accept": "text/html"}, timeout=10)
            assert page.status_code == 200
            assert "Production" in page.text
