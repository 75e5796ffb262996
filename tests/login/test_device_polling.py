"""`broker login --device` polls as RFC 8628 §3.5 asks: at the interval, five seconds slower
after each slow_down, and stops on a token, a denial or an expired code."""

from __future__ import annotations

import httpx
import pytest

from broker.login.flow import device_login
from broker.login.session import LoginError

URL = "https://broker.example.test"
GRANT = {
    "device_code": "dc",
    "user_code": "BCDF-GHJK",
    "verification_uri": URL + "/device",
    "verification_uri_complete": URL + "/device?user_code=BCDF-GHJK",
    "expires_in": 600,
    "interval": 5,
}
TOKEN = {
    "access_token": "bst_x",
    "token_type": "Bearer",
    "expires_in": 3600,
    "subject": "alice",
    "idp": "corp",
}


def _broker(answers: list[tuple[int, dict[str, object]]]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cli/device":
            return httpx.Response(200, json=GRANT)
        assert request.url.path == "/cli/token"
        assert b"device_code=dc" in request.content
        status, body = answers.pop(0)
        return httpx.Response(status, json=body)

    return httpx.Client(transport=httpx.MockTransport(handle))


def test_polls_at_the_interval_and_slows_down_when_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    slept: list[float] = []
    answers: list[tuple[int, dict[str, object]]] = [
        (400, {"error": "authorization_pending"}),
        (400, {"error": "slow_down"}),
        (400, {"error": "authorization_pending"}),
        (200, TOKEN),
    ]
    with _broker(answers) as http:
        stored = device_login(URL, timeout=600, http=http, sleep=slept.append)
    assert slept == [5, 5, 10, 10]
    assert (stored.access_token, stored.subject) == ("bst_x", "alice")
    err = capsys.readouterr().err
    assert "BCDF-GHJK" in err
    assert URL + "/device" in err


@pytest.mark.parametrize(
    ("error", "said"),
    [("access_denied", "denied"), ("expired_token", "expired"), ("invalid_grant", "invalid_grant")],
)
def test_stops_on_a_final_answer(error: str, said: str) -> None:
    with _broker([(400, {"error": error})]) as http, pytest.raises(LoginError, match=said):
        device_login(URL, timeout=600, http=http, sleep=lambda _: None)
