"""A scripted OpenAI-compatible server on loopback, for client fault tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sse_body(text: str, usage: dict | None = None) -> bytes:
    events = [{"choices": [{"delta": {"content": w}}]} for w in text.split("|")]
    if usage:
        events.append({"choices": [], "usage": usage})
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


class FaultServer:
    """Each request pops the next scripted step: ("ok", text) | ("status", code, headers)
    | ("slow", seconds) | ("garbage",) | ("cut", text)."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                server.requests.append({"path": self.path, "body": json.loads(self.rfile.read(length)),
                                        "auth": self.headers.get("authorization")})
                step = server.steps.pop(0) if server.steps else ("ok", "default")
                kind = step[0]
                if kind == "status":
                    self.send_response(step[1])
                    for k, v in (step[2] if len(step) > 2 else {}).items():
                        self.send_header(k, v)
                    body = b'{"error": "scripted"}'
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if kind == "slow":
                    time.sleep(step[1])
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                if kind == "garbage":
                    self.wfile.write(b"data: {not json\n\n")
                elif kind == "cut":  # whole events, then the connection closes: no [DONE]
                    self.wfile.write(sse_body(step[1]).removesuffix(b"data: [DONE]\n\n"))
                    self.wfile.flush()
                    self.connection.shutdown(2)
                else:
                    self.wfile.write(sse_body(step[1] if len(step) > 1 else "ok",
                                              {"prompt_tokens": 11, "completion_tokens": 2}))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
