"""S3's access rules in front of moto, which checks neither signatures nor ACLs.

`python -m tests.support.s3_gateway --port P --upstream http://127.0.0.1:M` forwards every
request to moto, after deciding as S3 does:

- a request signed in its Authorization header (boto3's calls) passes;
- a presigned URL (SigV4 in the query) passes if its signature is right, computed again
  with botocore from the secret of the process's AWS_SECRET_ACCESS_KEY, and it has not
  expired (X-Amz-Date + X-Amz-Expires); otherwise 403 AccessDenied or
  SignatureDoesNotMatch, as S3 answers;
- an anonymous GET or HEAD passes only for an object whose ACL grants AllUsers READ
  (e.g. a Remotion Lambda output rendered with privacy "public"); otherwise 403.
"""

from __future__ import annotations

import argparse
import http.client
import os
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
HOP_HEADERS = {"host", "connection", "expect", "transfer-encoding", "keep-alive", "content-length"}


def error_body(code: str, message: str) -> bytes:
    """S3's XML error document."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()


def check_presigned(method: str, host: str, raw_path: str, now: datetime) -> str:
    """Why a SigV4 presigned request is refused ("" when it is good)."""
    path, _, query = raw_path.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    try:
        access_key, _day, region, service, _ = params["X-Amz-Credential"].split("/")
        signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(params["X-Amz-Expires"])
        signature = params["X-Amz-Signature"]
    except (KeyError, ValueError):
        return "AuthorizationQueryParametersError"
    if params.get("X-Amz-SignedHeaders") != "host" or not 1 <= expires <= 604800:
        return "AuthorizationQueryParametersError"
    unsigned = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
    request = AWSRequest(method=method, url=f"http://{host}{path}?{unsigned}")
    request.context["timestamp"] = params["X-Amz-Date"]
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
    auth = S3SigV4QueryAuth(Credentials(access_key, secret), service, region, expires=expires)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if expected != signature:
        return "SignatureDoesNotMatch"
    if now > signed_at + timedelta(seconds=expires):
        return "AccessDenied"  # "Request has expired"
    return ""


def read_chunked(stream: BufferedIOBase) -> bytes:
    """A chunked request body (aws-chunked uploads), trailers skipped."""
    chunks: list[bytes] = []
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        chunks.append(stream.read(size))
        stream.readline()


class GatewayHandler(BaseHTTPRequestHandler):
    """Decides as S3 does, then forwards to `target` (moto); see the module docstring."""

    protocol_version = "HTTP/1.1"
    target = urlsplit("http://127.0.0.1")  # set by make_handler

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return read_chunked(self.rfile)
        return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        length = str(len(body))
        for name, value in headers:
            if name.lower() not in HOP_HEADERS:
                self.send_header(name, value)
            elif name.lower() == "content-length" and self.command == "HEAD":
                length = value  # the object's size; a HEAD response has no body
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, code: str) -> None:
        messages = {
            "AccessDenied": "Request has expired" if self._presigned() else "Access Denied",
            "SignatureDoesNotMatch": "The request signature we calculated does not match",
        }
        body = error_body(code, messages.get(code, "Query-string authentication error"))
        status = 400 if code == "AuthorizationQueryParametersError" else 403
        self._send(status, [("Content-Type", "application/xml")], body)

    def _presigned(self) -> bool:
        return "X-Amz-Signature=" in self.path or "X-Amz-Algorithm=" in self.path

    def _upstream(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(
            self.target.hostname or "127.0.0.1", self.target.port, timeout=60
        )
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _public(self) -> bool:
        """Whether the object named by the path grants AllUsers READ (moto's ACL)."""
        path = urlsplit(self.path).path
        if path.count("/") < 2:
            return False
        status, _, body = self._upstream("GET", f"{path}?acl", b"", {})
        text = body.decode(errors="replace")
        return status == 200 and ALL_USERS in text and "<Permission>READ<" in text

    def _handle(self) -> None:
        body = self._body()
        if "Authorization" not in self.headers:
            if self._presigned():
                host = self.headers.get("Host", "")
                refusal = check_presigned(self.command, host, self.path, datetime.now(UTC))
                if refusal:
                    self._refuse(refusal)
                    return
            elif self.command not in ("GET", "HEAD") or not self._public():
                self._refuse("AccessDenied")
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        headers["Host"] = self.target.netloc
        status, response_headers, response_body = self._upstream(
            self.command, self.path, body, headers
        )
        self._send(status, response_headers, response_body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

    def log_message(self, *args: object) -> None:
        pass


def make_handler(upstream: str) -> type[BaseHTTPRequestHandler]:
    """A handler class forwarding to `upstream` (moto)."""
    return type("Handler", (GatewayHandler,), {"target": urlsplit(upstream)})


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.upstream))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
