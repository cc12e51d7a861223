"""An HTTP proxy in front of DynamoDB Local that answers chosen requests with AWS errors.

DynamoDB Local never throttles, never fails with a 5xx and knows no IAM. Put this proxy between a
real ``ddblake`` process and DynamoDB Local (``--endpoint-url`` = the proxy) and it injects what AWS
would answer: throttling, 5xx, access denied — by a seeded plan, per request. Every request is
logged with botocore's invocation ID and attempt number (headers ``amz-sdk-invocation-id`` and
``amz-sdk-request: attempt=N; max=M``), so a test can see the retries and the pauses between them.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

DDB = "com.amazonaws.dynamodb.v20120810"


@dataclass(frozen=True)
class Call:
    """One request as the proxy saw it."""

    target: str  # e.g. DynamoDB_20120810.DescribeTable, DynamoDBStreams_20120810.GetRecords
    invocation: str
    attempt: int
    max_attempts: int
    at: float  # monotonic seconds
    injected: str | None  # the error code answered instead of forwarding, if any


@dataclass(frozen=True)
class Fault:
    status: int
    code: str
    message: str = "injected by the fault suite"

    def body(self) -> bytes:
        return json.dumps({"__type": f"{DDB}#{self.code}", "message": self.message}).encode()


THROTTLE = Fault(400, "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
PROVISIONED = Fault(
    400,
    "ProvisionedThroughputExceededException",
    "The level of configured provisioned throughput was exceeded.",
)
LIMIT = Fault(400, "LimitExceededException", "Too many operations for a given subscriber.")
INTERNAL = Fault(500, "InternalServerError", "Internal server error")
UNAVAILABLE = Fault(503, "ServiceUnavailable", "Service unavailable")
TRANSIENT = (THROTTLE, PROVISIONED, LIMIT, INTERNAL, UNAVAILABLE)


def access_denied(action: str, table: str, account: str, principal: str) -> Fault:
    """AccessDeniedException worded as AWS words it, naming the principal and the table's ARN."""
    return Fault(
        400,
        "AccessDeniedException",
        f"User: {principal} is not authorized to perform: dynamodb:{action} on resource: "
        f"arn:aws:dynamodb:us-east-1:{account}:table/{table} because no identity-based policy allows "
        f"the dynamodb:{action} action",
    )


Plan = Callable[[Call], Fault | None]


@dataclass
class FlakyProxy:
    """``with FlakyProxy(upstream, plan) as proxy:`` — ``proxy.endpoint`` goes to ``--endpoint-url``."""

    upstream: str
    plan: Plan
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> FlakyProxy:
        up = urlparse(self.upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
                return

            def do_POST(self) -> None:  # noqa: N802 - the base's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                attempt, max_attempts = 1, 1
                for part in (self.headers.get("amz-sdk-request") or "").split(";"):
                    name, _, value = part.strip().partition("=")
                    if name == "attempt" and value.isdigit():
                        attempt = int(value)
                    elif name == "max" and value.isdigit():
                        max_attempts = int(value)
                call = Call(
                    target=self.headers.get("X-Amz-Target") or "",
                    invocation=self.headers.get("amz-sdk-invocation-id") or "",
                    attempt=attempt,
                    max_attempts=max_attempts,
                    at=time.monotonic(),
                    injected=None,
                )
                with proxy._lock:
                    fault = proxy.plan(call)
                    proxy.calls.append(
                        call if fault is None else Call(**{**call.__dict__, "injected": fault.code})
                    )
                if fault is not None:
                    payload = fault.body()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("x-amzn-RequestId", "FAULTSUITE")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=60)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                    }
                    conn.request("POST", self.path, body=body, headers=headers)
                    answer = conn.getresponse()
                    payload = answer.read()
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    conn.close()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="flaky-proxy", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def injected(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.injected]

    def retry_pauses(self) -> list[float]:
        """Seconds between consecutive attempts of one invocation (botocore's backoff), all invocations."""
        with self._lock:
            by_invocation: dict[str, list[Call]] = {}
            for c in self.calls:
                if c.invocation:
                    by_invocation.setdefault(c.invocation, []).append(c)
        pauses = []
        for calls in by_invocation.values():
            calls.sort(key=lambda c: c.attempt)
            pauses.extend(b.at - a.at for a, b in zip(calls, calls[1:], strict=False))
        return pauses
