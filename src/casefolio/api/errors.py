"""Map domain errors to HTTP once; render them as problem+json (v1) or OpenProject errors (v3)."""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass, replace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from casefolio.api.auth import credentials_sent
from casefolio.db.conflicts import is_concurrent_change, is_out_of_space, is_write_conflict
from casefolio.db.engine import DatabaseUnavailable
from casefolio.domain import errors, text
from casefolio.fastpath.sqlite_inline import is_lock_timeout
from casefolio.logs import redact_target
from casefolio.storage.base import BlobMissing, BlobStoreUnavailable

log = logging.getLogger(__name__)
V3_PREFIX = "/api/v3"
V3_URN = "urn:openproject-org:api:v3:errors:"
HAL_JSON = "application/hal+json; charset=utf-8"
# OpenProject's own wording, which its clients show to people.
V3_LOGIN_NEEDED = "You need to be authenticated to access this resource."
V3_WRONG_CREDENTIALS = "You did not provide the correct credentials."
V3_NOT_FOUND = "The requested resource could not be found."
V3_REALM = "OpenProject API"
#: The schemes a client may ask the 401's WWW-Authenticate to name, with
#: `X-Authentication-Scheme` (OpenProject's WWWAuthenticate.pick_auth_scheme): browser
#: clients ask for `Session` so that the browser shows no login dialog of its own.
V3_AUTH_SCHEMES = frozenset({"Basic", "Session"})
FASTAPI_JSON_ERROR = "JSON decode error"
NOT_JSON_BODY = (
    "The request body must be JSON, sent with the header Content-Type: application/json."
)


@dataclass(frozen=True)
class Problem:
    status: int
    title: str
    detail: str
    v3_identifier: str
    errors: list[dict[str, str]] | None = None
    headers: dict[str, str] | None = None
    # What v3 says instead of `detail`, where OpenProject prescribes the text (or a list of texts).
    v3_message: str | list[str] | None = None

    @classmethod
    def bad_request(
        cls, detail: str, v3_identifier: str, errors: list[dict[str, str]] | None = None
    ) -> Problem:
        """400 Bad Request: `v3_identifier` is InvalidQuery or InvalidRequestBody (a field
        error names the field, as `{"field": …, "message": …}`)."""
        return cls(400, "Bad Request", detail, v3_identifier, errors)


#: The answers that say the same whatever the request.
CONCURRENT_CHANGE = Problem(
    409,
    "Conflict",
    "The change conflicts with a concurrent change; retry the request.",
    "UpdateConflict",
)
CLIENT_GONE = Problem.bad_request(
    "The client disconnected before the request body was complete.", "InvalidRequestBody"
)
INTERNAL_ERROR = Problem(
    500, "Internal Server Error", "An internal error has occurred.", "InternalServerError"
)


class DialectProblem(Exception):
    """A refusal only one dialect has (v3's 415, or its 422 naming an attribute), raised by
    that dialect's HTTP layer; the domain never raises it."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


_STATUS = {
    errors.Invalid: (400, "Bad Request", "InvalidQuery"),
    errors.Unauthenticated: (401, "Unauthorized", "Unauthenticated"),
    errors.Forbidden: (403, "Forbidden", "MissingPermission"),
    errors.NotFound: (404, "Not Found", "NotFound"),
    errors.Conflict: (409, "Conflict", "UpdateConflict"),
    errors.Gone: (410, "Gone", "NotFound"),
    errors.TooLarge: (413, "Content Too Large", "PropertyConstraintViolation"),
    errors.RateLimited: (429, "Too Many Requests", "TooManyRequests"),
}
_HTTP_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    415: "Unsupported Media Type",
}
_HTTP_V3 = {404: "NotFound", 405: "NotFound", 406: "NotFound", 415: "TypeNotSupported"}


def problem_for(exc: errors.DomainError) -> Problem:
    status, title, identifier = next(
        (spec for cls, spec in _STATUS.items() if isinstance(exc, cls)),
        (400, "Bad Request", "InvalidQuery"),
    )
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    field_errors = exc.errors if isinstance(exc, errors.Invalid) else None
    return Problem(status, title, exc.message, identifier, field_errors or None, headers or None)


def render(request: Request, problem: Problem) -> JSONResponse:
    """Given a problem, return the response in the dialect the request was made in."""
    headers = dict(problem.headers or {})
    if request.url.path.startswith(V3_PREFIX):
        body: dict[str, Any] = {
            "_type": "Error",
            "errorIdentifier": V3_URN + problem.v3_identifier,
            "message": problem.detail if problem.v3_message is None else problem.v3_message,
        }
        if problem.status == 401:
            headers["WWW-Authenticate"] = _www_authenticate(request)
        if problem.errors and problem.errors[0].get("field"):
            body["_embedded"] = {"details": {"attribute": problem.errors[0]["field"]}}
        return JSONResponse(body, problem.status, headers=headers, media_type=HAL_JSON)
    body = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors:
        body["errors"] = problem.errors
    return JSONResponse(
        body, problem.status, headers=headers, media_type="application/problem+json"
    )


def _www_authenticate(request: Request) -> str:
    """The 401's challenge: Basic, or the scheme the request asked for if OpenProject offers
    it (the name as sent, case and all, as OpenProject compares it)."""
    asked = request.headers.get("x-authentication-scheme", "")
    scheme = asked if asked in V3_AUTH_SCHEMES else "Basic"
    return f'{scheme} realm="{V3_REALM}"'


def describe_validation(exc: RequestValidationError) -> Problem:
    """Given a validation error (FastAPI's, or api/jsonbody.py's), return its 400."""
    field_errors: list[dict[str, str]] = []
    found = exc.errors()
    if unstorable := [e for e in found if e.get("type") == text.UNSTORABLE]:
        found = unstorable[:1]  # the other members of a union only add noise
    for error in found:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        if error.get("type") == "json_invalid":
            return _invalid_json(location, str(error.get("msg", "")))
        if tuple(error.get("loc", ())) == ("body",) and isinstance(error.get("input"), bytes):
            # A JSON body FastAPI left unread, as its Content-Type is not JSON (curl -d sends
            # application/x-www-form-urlencoded): "Input should be a valid dictionary".
            return Problem.bad_request(NOT_JSON_BODY, "InvalidRequestBody")
        if error.get("type") == text.UNSTORABLE:
            # Raised for a whole object, the path inside it is in the context; of the
            # location, union member names (`UserIn`, `list[UserIn]`) are left out.
            context = error.get("ctx") or {}
            kept = [part for part in location if not part[:1].isupper() and "[" not in part]
            location = [*kept, *filter(None, [str(context.get("field", ""))])]
            error = {**error, "msg": str(context.get("problem", error.get("msg")))}
        field = ".".join(
            location[1:] if location and location[0] in ("query", "path", "header") else location
        )
        field_errors.append({"field": field or "body", "message": str(error.get("msg", "invalid"))})
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors)
    in_body = all(tuple(e.get("loc", ()))[:1] in (("body",), ("metadata",)) for e in found)
    identifier = "InvalidRequestBody" if in_body else "InvalidQuery"
    return Problem.bad_request(f"Validation failed. {summary}", identifier, field_errors)


def _invalid_json(location: list[str], reason: str) -> Problem:
    """JSON that does not parse: the body, a multipart part or a query parameter's."""
    if location[:1] == ["query"] and len(location) > 1:
        detail = f"The query parameter {location[1]} is not valid JSON: {reason}."
        field = [{"field": location[1], "message": reason}]
        return Problem.bad_request(detail, "InvalidQuery", field)
    if location and not location[0].isdigit():
        detail = f"The {location[0]} part is not valid JSON: {reason}."
        field = [{"field": location[0], "message": reason}]
        return Problem.bad_request(detail, "InvalidRequestBody", field)
    detail = "The request body is not valid JSON."
    if reason and reason != FASTAPI_JSON_ERROR:  # FastAPI's own says only where it stopped
        detail = f"The request body is not valid JSON: {reason}."
    return Problem.bad_request(detail, "InvalidRequestBody")


def _retry_soon(request: Request, detail: str, seconds: int = 1) -> JSONResponse:
    """503 with Retry-After: a passing condition of a service we use, not the client's fault."""
    problem = Problem(
        503,
        "Service Unavailable",
        detail,
        "InternalServerError",
        headers={"Retry-After": str(seconds)},
    )
    return render(request, problem)


#: Where the disk (or a quota) is full, a write that needed room failed and was undone.
_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _no_space(request: Request, exc: Exception) -> JSONResponse:
    log.error("out of storage space on %s: %s", _where(request), exc)
    problem = Problem(
        507,
        "Insufficient Storage",
        "The server has no space left to store this; nothing was stored or changed. "
        "Its administrator must free space or add some.",
        "InternalServerError",
    )
    return render(request, problem)


def _where(request: Request) -> str:
    """A request's method and path as a log line names them (logs.py: no secrets)."""
    return f"{request.method} {redact_target(request.url.path)}"


def _allowed_methods(request: Request) -> str:
    """Every method some route answers at this path (RFC 9110 Allow): Starlette names only
    the first route whose path matched. HEAD goes wherever GET does (api/middleware.py)."""
    path = request.url.path
    methods: set[str] = set()
    for route in request.app.routes:
        found = getattr(route, "methods", None)
        if found and route.path_regex.fullmatch(path):
            methods |= found
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into a readable response."""

    @app.exception_handler(errors.DomainError)
    async def _domain(request: Request, exc: errors.DomainError) -> JSONResponse:
        problem = problem_for(exc)
        if isinstance(exc, errors.Unauthenticated):
            sent = credentials_sent(request)
            problem = replace(problem, v3_message=V3_WRONG_CREDENTIALS if sent else V3_LOGIN_NEEDED)
        elif isinstance(exc, errors.NotFound):
            problem = replace(problem, v3_message=V3_NOT_FOUND)
        return render(request, problem)

    @app.exception_handler(DialectProblem)
    async def _dialect(request: Request, exc: DialectProblem) -> JSONResponse:
        return render(request, exc.problem)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return render(request, describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _HTTP_TITLES.get(exc.status_code, "Error")
        detail = str(exc.detail)
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            # FastAPI's own body parsing (json.loads) ran out of stack: say why.
            detail = f"The request body is not valid JSON: it {text.TOO_DEEP}."
        elif exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI's "There was an error parsing the body": JSON whose bytes are not UTF-8.
            detail = "The request body is not valid JSON: JSON is sent in UTF-8, and it is not."
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is no resource at {request.url.path}."
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            detail = f"{request.method} is not allowed on {request.url.path}."
            if request.method == "PUT" and "POST" in allowed.split(", "):
                # `curl -T file` sends PUT: the usual way to land here with an upload.
                detail += " Use POST (with curl: -X POST -T file, or --data-binary @file)."
            headers = {**(headers or {}), "Allow": allowed}
        problem = Problem(
            exc.status_code,
            title,
            detail,
            _HTTP_V3.get(exc.status_code, "InvalidQuery"),
            headers=headers,
            # OpenProject's catch-all route (`route :any, "*path"`) raises its plain NotFound:
            # a path no route takes, such as /documents/abc, reads like any missing resource.
            v3_message=V3_NOT_FOUND if exc.status_code == 404 else None,
        )
        return render(request, problem)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Domain checks come first; this catches the race they cannot see (two writers at
        # once). Any other violation is a bug, and answered as one (db/conflicts.py).
        if not is_concurrent_change(exc):
            return await _unexpected(request, exc)
        log.info("integrity error: %s", exc.orig)
        return render(request, CONCURRENT_CHANGE)

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        # The ORM updated a row that another request deleted or changed after this one read
        # it (PostgreSQL: it waited for that request's commit, then matched no row).
        log.info("stale row: %s", exc)
        return render(request, CONCURRENT_CHANGE)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if is_out_of_space(exc):
            return _no_space(request, exc)
        if is_write_conflict(exc):
            log.info("write conflict on %s: %s", _where(request), exc.orig)
            return render(request, CONCURRENT_CHANGE)
        if not exc.connection_invalidated:
            return await _unexpected(request, exc)
        # The server dropped the connection (restart, failover, idle timeout): SQLAlchemy
        # has already replaced the pool's connections, so a retry gets a fresh one.
        log.warning("database connection lost on %s", _where(request))
        return _retry_soon(request, "The connection to the database was lost; retry the request.")

    @app.exception_handler(DatabaseUnavailable)
    async def _unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.warning("database unavailable on %s: %s", _where(request), exc)
        return _retry_soon(request, exc.detail)

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        if not is_lock_timeout(exc):
            return await _database(request, exc)
        # SQLite: another process held the write lock for longer than the configured wait.
        log.warning("database write lock wait expired on %s", _where(request))
        return _retry_soon(
            request, "The database is busy with other writes; nothing was changed. Retry shortly."
        )

    @app.exception_handler(BlobStoreUnavailable)
    async def _blobs_unavailable(request: Request, exc: BlobStoreUnavailable) -> JSONResponse:
        log.error("blob store unavailable on %s: %s", _where(request), exc)
        return _retry_soon(
            request,
            "The file store cannot be reached just now; nothing was stored or changed. "
            "Retry later.",
            seconds=5,
        )

    @app.exception_handler(BlobMissing)
    async def _blob_missing(request: Request, exc: BlobMissing) -> JSONResponse:
        # A row names bytes the store does not have: lost outside casefolio (a disk, a
        # restore, a bucket rule). Not the client's doing, and not to be retried.
        log.error("%s (on %s)", exc, _where(request))
        problem = Problem(
            500,
            "Internal Server Error",
            "The stored bytes of this version are missing from the blob store; nothing was "
            "sent. The administrator finds the file's SHA-256 in the server's log.",
            "InternalServerError",
        )
        return render(request, problem)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> JSONResponse:
        if exc.errno in _NO_SPACE_ERRNOS:
            return _no_space(request, exc)
        return await _unexpected(request, exc)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # A client that hangs up mid-upload is a normal event, not a server error: one line.
        # Whatever it sent is already discarded (the spool removes its staging file).
        log.info("client disconnected during %s", _where(request))
        return render(request, CLIENT_GONE)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", _where(request))
        return render(request, INTERNAL_ERROR)
