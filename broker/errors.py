"""The broker's one exception tree: each class carries a stable code and an HTTP status.

    BrokerError
    ├── BadRequest (400)
    │   ├── MalformedRequest, InvalidParameter ── FavouritesFull (409)
    │   ├── NotFound (404), MethodNotAllowed (405)
    │   ├── RequestTooLarge (413), TooManyAttempts (429)
    │   └── OAuthError ── InvalidRequest, InvalidGrant, AuthorizationPending, SlowDown,
    │       ExpiredToken, AccessDenied, UnsupportedGrantType, InvalidClient: RFC 6749 §5.2
    │       and RFC 8628 §3.5 codes, in their own snake_case, for `broker login`
    ├── AuthenticationFailed (401)
    │   ├── InvalidToken, TokenTooLarge, InvalidSignature, AlgorithmNotAllowed,
    │   │   UnsupportedCriticalHeader, UnknownIssuer, InvalidIssuer, InvalidAudience,
    │   │   TokenExpired, TokenNotYetValid, UnknownSigningKey, MissingToken
    │   ├── InvalidAssertion ─┬─ InvalidDestination, InvalidRecipient, InvalidSubjectConfirmation,
    │   │                     ├─ InvalidRoleAttribute, InvalidSessionAttribute,
    │   │                     └─ UnsolicitedResponse, UnknownInResponseTo ── SignInNotStartedHere
    │   ├── ReplayDetected, SessionExpired ── ReauthenticationRequired
    │   ├── SessionEnded (a command line's broker session: unknown, revoked or expired)
    │   ├── StateMismatch, InvalidNonce, SignInRefusedByIdp, AuthorizationCodeRefused
    │   └── StsInvalidIdentityToken, StsTokenExpired
    ├── AuthorizationFailed (403)
    │   ├── NoRoleGranted, RoleNotGranted, CsrfFailed, RedirectNotAllowed
    │   ├── SessionAttributeRefused
    │   └── StsAccessDenied
    ├── RoleSelectionRequired (409)
    ├── UpstreamError (502)
    │   ├── StsRefused, IdpUnavailable (503), StsUnavailable (503), StsThrottled (503),
    │   │   StsRateLimited (503), StoreUnavailable (503)
    │   └── FederationRefused
    ├── SetupError (the setup helper's CLI only)
    └── ConfigError (startup only, never reaches a client)

The client sees `code`, a human sentence (`detail`) and an `error_id`; anything more
specific goes to the log under the same `error_id`. No message ever carries a token,
an assertion or a credential.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, ClassVar


class BrokerError(Exception):
    """Base of every error the broker raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalError"
    title: ClassVar[str] = "Internal error"
    # False for an answer that only says "not yet": nothing was decided, so no audit event.
    decides: ClassVar[bool] = True

    def __init__(
        self,
        detail: str,
        *,
        log_detail: str | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        # Safe for the log (never for the client): what exactly was wrong.
        self.log_detail = log_detail
        # Extra members of the problem document, e.g. the roles to choose from.
        self.extra: dict[str, Any] = dict(extra or {})
        self.headers: dict[str, str] = dict(headers or {})
        # Shared by the response, the log line and the audit event for this refusal.
        self.error_id: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The code is the class name unless a class pins another: stable by construction.
        if "code" not in cls.__dict__:
            cls.code = cls.__name__


class BadRequest(BrokerError):
    status = 400
    title = "Bad request"


class MalformedRequest(BadRequest):
    pass


class InvalidParameter(BadRequest):
    pass


class FavouritesFull(InvalidParameter):
    """The picker keeps a bounded list of starred roles; another is refused, nothing stored."""

    status = 409
    title = "Too many favourites"


class NotFound(BadRequest):
    status = 404
    title = "Not found"


class MethodNotAllowed(BadRequest):
    status = 405
    title = "Method not allowed"


class RequestTooLarge(BadRequest):
    status = 413
    title = "Request too large"


class TooManyAttempts(BadRequest):
    status = 429
    title = "Too many attempts"


class OAuthError(BadRequest):
    """The command line's token endpoint answers in RFC 6749 §5.2's shape: `error` is the
    code, `error_description` the sentence."""

    code = "invalid_request"


class InvalidRequest(OAuthError):
    code = "invalid_request"


class InvalidGrant(OAuthError):
    code = "invalid_grant"


class AuthorizationPending(OAuthError):
    """RFC 8628 §3.5: the person has not approved yet; the command line polls again."""

    code = "authorization_pending"
    decides = False


class SlowDown(OAuthError):
    """RFC 8628 §3.5: still not yet, and poll less often."""

    code = "slow_down"
    decides = False


class ExpiredToken(OAuthError):
    code = "expired_token"


class AccessDenied(OAuthError):
    code = "access_denied"


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"


class InvalidClient(OAuthError):
    code = "invalid_client"


class AuthenticationFailed(BrokerError):
    status = 401
    title = "Authentication failed"


class MissingToken(AuthenticationFailed):
    pass


class InvalidToken(AuthenticationFailed):
    pass


class TokenTooLarge(AuthenticationFailed):
    pass


class InvalidSignature(AuthenticationFailed):
    pass


class AlgorithmNotAllowed(AuthenticationFailed):
    pass


class UnsupportedCriticalHeader(AuthenticationFailed):
    pass


class UnknownIssuer(AuthenticationFailed):
    pass


class InvalidIssuer(AuthenticationFailed):
    pass


class InvalidAudience(AuthenticationFailed):
    pass


class TokenExpired(AuthenticationFailed):
    pass


class TokenNotYetValid(AuthenticationFailed):
    pass


class UnknownSigningKey(AuthenticationFailed):
    pass


class InvalidAssertion(AuthenticationFailed):
    pass


class ReplayDetected(AuthenticationFailed):
    pass


class InvalidRoleAttribute(InvalidAssertion):
    """The Role attribute is missing or holds a value STS would not accept."""


class InvalidSessionAttribute(InvalidAssertion):
    """RoleSessionName, SessionDuration, SourceIdentity or session tags are malformed."""


class InvalidDestination(InvalidAssertion):
    """The Response's Destination is missing or is not exactly our ACS URL."""


class InvalidRecipient(InvalidAssertion):
    """SubjectConfirmationData's Recipient is missing or is not exactly our ACS URL."""


class InvalidSubjectConfirmation(InvalidAssertion):
    """The assertion's SubjectConfirmation is not one well-formed bearer confirmation."""


class UnsolicitedResponse(InvalidAssertion):
    """SAML Profiles §4.1.5: an unsolicited response from an IdP not allowed to send one."""


class UnknownInResponseTo(InvalidAssertion):
    """The response answers no AuthnRequest we sent (or one sent to another IdP)."""


class SignInNotStartedHere(UnknownInResponseTo):
    """Login CSRF: the response answers an AuthnRequest the posting browser did not start."""


class StateMismatch(AuthenticationFailed):
    """RFC 6749 §10.12, login CSRF: the OIDC callback's `state` names no sign-in this browser
    started, or one started too long ago."""


class InvalidNonce(AuthenticationFailed):
    """OIDC Core §3.1.3.7: the ID token's nonce is not the one this browser's sign-in sent."""


class SignInRefusedByIdp(AuthenticationFailed):
    """RFC 6749 §4.1.2.1: the IdP answered the sign-in with an error (access_denied…)."""


class AuthorizationCodeRefused(AuthenticationFailed):
    """RFC 6749 §5.2: the token endpoint refused the authorization code (used already,
    expired, issued to another client, or the PKCE verifier does not match)."""


class SessionExpired(AuthenticationFailed):
    pass


class ReauthenticationRequired(SessionExpired):
    """The kept IdP assertion is past STS's redemption window: the person goes back through
    the IdP (the browser does that by itself); nothing is sent to STS."""


class SessionEnded(AuthenticationFailed):
    """A command line's broker session token is unknown, revoked or expired: `broker login`
    again. Nothing is sent to STS."""


class StsInvalidIdentityToken(AuthenticationFailed):
    pass


class StsTokenExpired(AuthenticationFailed):
    pass


class AuthorizationFailed(BrokerError):
    status = 403
    title = "Not authorized"


class NoRoleGranted(AuthorizationFailed):
    pass


class RoleNotGranted(AuthorizationFailed):
    pass


class CsrfFailed(AuthorizationFailed):
    pass


class RedirectNotAllowed(AuthorizationFailed):
    pass


class SessionAttributeRefused(AuthorizationFailed):
    """Issuer mode: a session tag or SourceIdentity built from the identity's values would
    break an AWS limit, so the broker does not sign it (and STS is never called)."""


class StsAccessDenied(AuthorizationFailed):
    pass


class RoleSelectionRequired(BrokerError):
    status = 409
    title = "Choose a role"


class UpstreamError(BrokerError):
    status = 502
    title = "Upstream error"


class StsRefused(UpstreamError):
    pass


class FederationRefused(UpstreamError):
    pass


class IdpUnavailable(UpstreamError):
    status = 503


class StsUnavailable(UpstreamError):
    status = 503


class StsThrottled(UpstreamError):
    status = 503


class StsRateLimited(UpstreamError):
    """The broker's own limit in front of STS refused the call, before STS would throttle."""

    status = 503


class StoreUnavailable(UpstreamError):
    status = 503


class SetupError(BrokerError):
    """A setup-helper step failed (CLI only, never reaches a client)."""

    title = "Setup failed"


class ConfigError(BrokerError):
    """Raised while loading configuration; stops startup, never reaches a client."""

    title = "Configuration error"


def new_error_id() -> str:
    """Shared by a refusal's response, its log line and its audit event."""
    return secrets.token_hex(8)
