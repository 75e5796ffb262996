"""Logging for the server: plain lines, with a last-resort scrubber for secrets."""

from __future__ import annotations

import logging
import re
import sys

# Belt and braces: the code never logs these, but a library might (httpx logs request URLs
# at INFO, and the getSigninToken URL carries credentials).
_SECRETS = (
    re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"),  # JWTs
    re.compile(
        r"(?i)((?:SigninToken|Session|SAMLResponse|SAMLAssertion|WebIdentityToken|"
        r"SessionToken|SecretAccessKey|sessionKey|sessionToken)[\"']?\s*[=:]\s*[\"']?)[^&\s\"',]+"
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


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Scrub())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # URL-logging clients stay quiet unless something is wrong.
    for noisy in ("httpx", "httpcore", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
