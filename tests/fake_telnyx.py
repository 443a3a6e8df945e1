"""A local HTTP server that answers like Telnyx's Call Control API and records requests."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OK = (200, {"data": {"result": "ok"}}, {})


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class FakeTelnyx:
    """Answers scripted responses in order (then ``OK``): (status, json, headers) or "drop"."""

    script: list = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.requests.append(Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                step = fake.script.pop(0) if fake.script else OK
                if step == "drop":  # the connection dies without an answer
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                status, payload, headers = step
                raw = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("x-request-id", f"req-{len(fake.requests)}")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A short poll so close() (shutdown) returns at once: dozens of tests start one each.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v2"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def errors(code, title, detail=None, pointer=None):
    e = {"code": code, "title": title}
    if detail:
        e["detail"] = detail
    if pointer:
        e["source"] = {"pointer": pointer}
    return {"errors": [e]}
