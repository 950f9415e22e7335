"""The one domain error type. Adapters (admin, API, commands) turn it into a message or an HTTP status."""


class CCPError(Exception):
    """An error with a sentence an operator can read. `http_status` is what the API answers with."""

    http_status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Conflict(CCPError):
    """Another operation holds the instance, or the state changed under the caller."""

    http_status = 409


class Forbidden(CCPError):
    """The user may not make this change (a panel-host setting, a privileged field)."""

    http_status = 403
