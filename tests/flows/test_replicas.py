"""Two broker replicas sharing Redis: a session opened on one works on the other, and an
assertion used on one is a replay on the other."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from broker.app import create_app
from broker.config import StoreSettings
from broker_demo.aws import AwsStandIn, serve
from tests.fakes.saml_idp import TestIdp
from tests.fakes.saml_world import (
    ADMIN,
    BASE_URL,
    DEPLOYER,
    IDP_ENTITY,
    PROD,
    register_idp,
    world_config,
)
from tests.fakes.servers import serve_app
from tests.fakes.trust import register_configured_roles

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[TestIdp, AwsStandIn, list[str], list[str]]]:
    tmp = tmp_path_factory.mktemp("replicas")
    idp = TestIdp(tmp / "idp", acs_url=BASE_URL + "/saml/acs", entity_id=IDP_ENTITY)
    standin = AwsStandIn()
    with ExitStack() as stack:
        standin_url = stack.enter_context(serve(standin))
        [provider] = register_idp(standin, idp, PROD)
        pairs = [f"{DEPLOYER},{provider}", f"{ADMIN},{provider}"]
        config = world_config(
            idp,
            standin_url,
            tmp / "audit.jsonl",
            IDP_ENTITY + "/sso",
            session_secret="shared-by-every-replica-" + "x" * 16,
        )
        config = config.model_copy(
            update={"store": StoreSettings(url=redis_url, key_prefix="replicas:")}
        )
        register_configured_roles(standin, config, idp="corp")
        urls = []
        for _ in range(2):
            app = create_app(config)
            urls.append(stack.enter_context(serve_app(app)))
        yield idp, standin, pairs, urls


def test_replay_is_caught_across_replicas(
    replicas: tuple[TestIdp, AwsStandIn, list[str], list[str]],
) -> None:
    idp, _, pairs, (a, b) = replicas
    response = idp.b64(roles=pairs)
    first = httpx.post(f"{a}/saml/acs", data={"SAMLResponse": response})
    assert first.status_code == 303, first.text
    again = httpx.post(
        f"{b}/saml/acs", data={"SAMLResponse": response}, headers={"accept": "application/json"}
    )
    assert again.status_code == 401
    assert again.json()["code"] == "ReplayDetected"


def test_session_opened_on_one_replica_works_on_the_other(
    replicas: tuple[TestIdp, AwsStandIn, list[str], list[str]],
) -> None:
    idp, _, pairs, (a, b) = replicas
    with httpx.Client(base_url=a, follow_redirects=False) as browser:
        r = browser.post("/saml/acs", data={"SAMLResponse": idp.b64(roles=pairs)})
        assert r.status_code == 303
        cookies = browser.cookies
    with httpx.Client(base_url=b, cookies=cookies, follow_redirects=False) as browser:
        page = browser.get("/", headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "Production" in page.text
        assert "deployer" in page.text


def test_readyz_reports_redis(replicas: tuple[TestIdp, AwsStandIn, list[str], list[str]]) -> None:
    _, _, _, urls = replicas
    for url in urls:
        assert httpx.get(f"{url}/readyz").json() == {"status": "ok"}
