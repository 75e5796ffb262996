"""The bare FastAPI/uvicorn ceiling: the broker's route and response class, no work behind it.

Served with the same uvicorn settings and loaded with the same wrk script and tokens as the
broker, so exchange req/s ÷ this req/s is the share of the framework's best that the broker
keeps while doing its own work.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

BODY = {
    "Credentials": {
        "AccessKeyId": "ASIABENCHBENCHBENCH0",
        "SecretAccessKey": "benchbenchbenchbenchbenchbenchbenchbench",
        "SessionToken": "B" * 600,
        "Expiration": "2030-01-01T00:00:00Z",
    },
    "RoleArn": "arn:aws:iam::111122223333:role/bench",
}

# Same FastAPI settings as the broker (broker/app.py), telemetry hooks off included.
app = FastAPI(
    title="ceiling",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
    telemetry={"tracing": False, "metrics": False, "logs": False},
)


@app.post("/v1/credentials")
async def credentials() -> JSONResponse:
    return JSONResponse(BODY, headers={"Cache-Control": "no-store"})
