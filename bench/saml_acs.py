"""Benchmark the SAML ACS verifier against stock python3-saml, same responses, same run.

    .venv/bin/python bench/saml_acs.py [--seconds N] [--responses N] [--shape both|assertion]

Responses are signed by the pysaml2 test IdP (tests/saml/idp.py) before timing starts. Ours
runs through SamlVerifier.verify() with a fresh MemoryStore on each pass over the responses,
so the replay cache never fires; stock runs OneLogin_Saml2_Response(...).is_valid(...) with
python3-saml's default security settings."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from broker.config import SamlIdp, ServerSettings
from broker.saml.settings import load_idps, sp_endpoints
from broker.saml.verify import SamlVerifier
from broker.store import MemoryStore
from tests.fakes.saml_idp import AUDIENCE, TestIdp


async def measure(
    name: str, seconds: float, items: list[str], call: Callable[[str, int], Awaitable[None]]
) -> float:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    rounds = 0
    while time.perf_counter() < deadline:
        for item in items:
            t0 = time.perf_counter()
            await call(item, rounds)
            latencies.append(time.perf_counter() - t0)
        rounds += 1
    elapsed = time.perf_counter() - start
    rate = len(latencies) / elapsed
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<22} {rate:8.1f} responses/s   p50 {q[49] * 1e3:6.2f} ms   "
        f"p99 {q[98] * 1e3:6.2f} ms   ({len(latencies)} calls)"
    )
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per contender")
    parser.add_argument("--responses", type=int, default=100, help="distinct signed responses")
    parser.add_argument("--shape", choices=["both", "assertion"], default="both")
    args = parser.parse_args()

    sp = sp_endpoints(ServerSettings(base_url="https://broker.example.test"))
    idp = TestIdp(Path(tempfile.mkdtemp(prefix="saml-bench-")), acs_url=sp.acs_url)
    print(f"signing {args.responses} responses with pysaml2 + xmlsec1 ({args.shape}) ...")
    sign_response = args.shape == "both"
    responses = [idp.b64(sign_response=sign_response) for _ in range(args.responses)]
    print(f"response size: {len(responses[0])} base64 characters")

    conf = SamlIdp(
        type="saml", entity_id=idp.entity_id, sso_url=idp.sso_url, certificates=[idp.key.cert_pem]
    )
    async with httpx.AsyncClient() as http:
        runtimes = await load_idps({"bench": conf}, sp, http)
    verifiers: dict[int, SamlVerifier] = {}

    async def ours(b64: str, rounds: int) -> None:
        if rounds not in verifiers:
            verifiers.clear()
            verifiers[rounds] = SamlVerifier(runtimes, sp, partition="aws", store=MemoryStore())
        await verifiers[rounds].verify(b64, now=dt.datetime.now(dt.UTC))

    stock_settings = OneLogin_Saml2_Settings(
        {
            "sp": {"entityId": AUDIENCE, "assertionConsumerService": {"url": sp.acs_url}},
            "idp": {
                "entityId": idp.entity_id,
                "singleSignOnService": {"url": idp.sso_url},
                "x509cert": idp.key.cert_pem,
            },
        }
    )
    request_data = {"https": "on", "http_host": "broker.example.test", "script_name": "/saml/acs"}

    async def stock(b64: str, _rounds: int) -> None:
        response = OneLogin_Saml2_Response(stock_settings, b64)
        if not response.is_valid(request_data):
            raise SystemExit(f"stock python3-saml refused a good response: {response.get_error()}")

    rate_ours = await measure("broker SamlVerifier", args.seconds, responses, ours)
    rate_stock = await measure("stock python3-saml", args.seconds, responses, stock)
    print(f"ratio ours/stock: {rate_ours / rate_stock:.2f}x   (target: ours >= 400/s)")


if __name__ == "__main__":
    asyncio.run(main())
