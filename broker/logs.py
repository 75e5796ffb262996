"""Logging for the server: one line a record, control characters escaped, secrets scrubbed."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

# Belt and braces: the code never logs these, but a library might (httpx logs request URLs
# at INFO, and URLs can carry them: a getSigninToken query holds credentials).
_SECRETS = (
    re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"),  # JWTs
    re.compile(
        r"(?i)((?:SigninToken|Session|SAMLResponse|SAMLAssertion|WebIdentityToken|"
        r"SessionToken|SecretAccessKey|sessionKey|sessionToken)[\"']?\s*[=:]\s*[\"']?)[^&\s\"',]+"
    ),
    # OAuth parameters in a query string: an access log's line for /oidc/callback?code=…&state=…
    re.compile(
        r"([?&](?:code|state|nonce|code_verifier|id_token|access_token|refresh_token|"
        r"client_secret|client_assertion)=)[^&\s\"']+"
    ),
)


class Scrub(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = message
        for pattern in _SECRETS:
            cleaned = pattern.sub(
                lambda m: (m.group(1) if m.groups() else "") + "[redacted]", cleaned
            )
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


# C0 and C1 controls, DEL, and what Unicode-aware log readers also take for a line break.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`\\n` becomes the four characters `\\x0a`: a value can never start a line of its own."""
    return _CONTROLS.sub(_escaped, text)


class LineFormatter(logging.Formatter):
    """OWASP Logging Cheat Sheet, "log injection": every value a caller sent (a path, a header,
    a form field) reaches the log through some message, so controls are escaped here, for every
    call site and library at once. A traceback keeps its lines, each one indented under its
    record, so an exception's message cannot forge a record either."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:  # noqa: N802
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("    " + escape_controls(line) for line in text.split("\n"))


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Scrub())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # URL-logging clients stay quiet unless something is wrong.
    for noisy in ("httpx", "httpcore", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
