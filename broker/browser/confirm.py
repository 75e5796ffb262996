"""Pages that ask before acting on another site's request: the same form, posted from here."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import Response

from broker.browser.session import BrowserSession
from broker.http.render import page

_NO_REFERRER = {"Referrer-Policy": "no-referrer"}


def confirm(
    session: BrowserSession,
    action: str,
    fields: Mapping[str, str | None],
    *,
    title: str,
    question: str,
    button: str,
) -> Response:
    """OWASP CSRF cheat sheet: a state-changing request another site started is not acted
    on; the person confirms with a button that posts the form (with its CSRF token) from
    this site. Framing is refused (X-Frame-Options: DENY), so the button cannot be
    clickjacked."""
    hidden = {k: v for k, v in fields.items() if v}
    return page(
        "confirm.html",
        {
            "title": title,
            "question": question,
            "button": button,
            "action": action,
            "fields": {"csrf": session.csrf, **hidden},
            "subject": session.identity.subject,
        },
        headers=_NO_REFERRER,
    )
