"""uvicorn's HTTP/1.1 protocol (httptools) with one change: a request it cannot parse gets a
problem document, like every other refusal of casefolio's, instead of a line of plain text.

Such requests never reach the application: bytes that are not HTTP/1.1, a header value with a
control character, or a URL longer than httptools' limit (docs/api.md, Limits on input).
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: httptools refuses a URL (path and query) longer than this many bytes.
MAX_URL_BYTES = 65_535

_PROBLEM = json.dumps(
    {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "The request is not valid HTTP/1.1, or its URL (path and query) is longer"
        f" than {MAX_URL_BYTES:,} bytes.",
    }
).encode()


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: application/problem+json\r\n",
            b"content-length: " + str(len(_PROBLEM)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + _PROBLEM)
        self.transport.close()
