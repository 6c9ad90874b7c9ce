"""Every error ki2api raises on purpose, in one tree.

    Ki2apiError
      InvalidRequest            the client sent something we cannot translate (400)
        RequestTooLarge         the body is over the configured limit (413)
        UnsupportedImage        an image we cannot send to Kiro (400)
      AuthenticationFailed      the client's API key is wrong (401)
      KiroLoginRequired         no usable Kiro login: missing, malformed, refresh refused (403)
        AccountSuspended        Kiro locked the account; Kiro's own words (403)
      KiroUnavailable           the refresh or API host cannot be reached or keeps failing (502/503)
      UpstreamError             Kiro answered with an error we pass on
        ContextLengthExceeded   the conversation is too long for the model (400)
        QuotaExceeded           the monthly Kiro quota is used up (402)
        RateLimited             Kiro is throttling or out of capacity (429)
        UpstreamTimeout         Kiro did not answer in time (504)
        ProtocolError           Kiro's event stream was corrupt (502)

Messages are complete sentences a person can act on; they never contain a token. The server maps
each class to the caller's error shape; `kind` is the OpenAI-style error type and `code` a stable
machine-readable code.
"""

from __future__ import annotations


class Ki2apiError(Exception):
    """Base class; `status` is the HTTP status the caller receives."""

    status = 500
    kind = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        kind: str | None = None,
    ) -> None:
        """`status`, `kind` and `code` override the class defaults for one-off cases (e.g. a 403 from Kiro)."""
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if kind is not None:
            self.kind = kind


class InvalidRequest(Ki2apiError):
    """The request is malformed or asks for something ki2api cannot do."""

    status = 400
    kind = "invalid_request_error"


class RequestTooLarge(InvalidRequest):
    """The request body is larger than the server accepts."""

    status = 413
    code = "request_too_large"


class UnsupportedImage(InvalidRequest):
    """An image in a format, size or location Kiro cannot take."""

    code = "unsupported_image"


class AuthenticationFailed(Ki2apiError):
    """The API key sent by the client does not match ki2api's key."""

    status = 401
    kind = "authentication_error"
    code = "invalid_api_key"


class KiroLoginRequired(Ki2apiError):
    """There is no Kiro login ki2api can use; the person has to log in to Kiro (or fix the named source).

    403, not 401: the caller's own key was fine, and no SDK retries a 403 (design.md §3).
    """

    status = 403
    kind = "permission_error"
    code = "kiro_login_required"


class AccountSuspended(Ki2apiError):
    """Kiro suspended or locked the account; only Kiro's support can lift it (kiro-protocol-2026.md §7)."""

    status = 403
    kind = "permission_error"
    code = "kiro_account_suspended"


class KiroUnavailable(Ki2apiError):
    """A Kiro host could not be reached or kept failing after retries."""

    status = 503
    kind = "api_error"
    code = "kiro_unavailable"
    retry_after: int | None = None  # seconds until ki2api tries again; sent as the Retry-After header


class UpstreamError(Ki2apiError):
    """Kiro rejected the request; `upstream_status` and `reason` are what Kiro said."""

    status = 502
    kind = "api_error"
    code = "kiro_error"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        reason: str | None = None,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code, status=status, kind=kind)
        self.upstream_status = upstream_status
        self.reason = reason


class ContextLengthExceeded(UpstreamError):
    """The conversation is longer than the model's context window (or Kiro's body limit)."""

    status = 400
    kind = "invalid_request_error"
    code = "context_length_exceeded"


class QuotaExceeded(UpstreamError):
    """The Kiro account has used its monthly allowance."""

    status = 402
    kind = "insufficient_quota"
    code = "insufficient_quota"


class RateLimited(UpstreamError):
    """Kiro is throttling requests or has no capacity for the model right now."""

    status = 429
    kind = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamTimeout(UpstreamError):
    """Kiro did not send the first byte, or went silent mid-stream, within the configured time."""

    status = 504
    kind = "timeout_error"
    code = "kiro_timeout"


class ProtocolError(UpstreamError):
    """Kiro's binary event stream could not be decoded (bad CRC, garbage, truncated frame)."""

    status = 502
    kind = "api_error"
    code = "kiro_protocol_error"
