"""Is the tracking server up, and how to name it in a message (without its password)."""

from __future__ import annotations

#: How long a ``/health`` request may take before the server counts as down (s).
HEALTH_TIMEOUT_S = 5.0


def server_problem(uri: str) -> str | None:
    """Why the tracking server at ``uri`` cannot be reached, or ``None`` when it answers
    (or is not a server: a sqlite/file store). One ``GET /health`` with
    :data:`HEALTH_TIMEOUT_S`; MLflow's own client retries for minutes before it gives up."""
    if not uri.startswith(("http://", "https://")):
        return None
    import urllib.error
    import urllib.request

    scheme, _, rest = redact(uri).partition("://")
    host, _, path = rest.rpartition("@")[2].partition("/")
    url = f"{scheme}://{host}/{path}".rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:  # it answered: a proxy or auth in front of it
        return None if exc.code < 500 else f"HTTP {exc.code} from {url}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def redact(uri: str) -> str:
    """``uri`` without a password (``http://user:secret@host`` -> ``http://user@host``)."""
    scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        userinfo, _, host = rest.partition("@")
        return f"{scheme}://{userinfo.split(':', 1)[0]}@{host}"
    return uri


def shorten(msg: str, width: int = 200) -> str:
    """``msg`` cut in the middle: MLflow's errors name the request first, the cause last."""
    return msg if len(msg) <= width else f"{msg[: width // 2]} ... {msg[-(width // 2) :]}"
