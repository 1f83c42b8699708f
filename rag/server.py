"""The assistant over HTTP: a FastAPI app with the API and the chat page.

`create_app(state)` builds the app around one `ServerState` (an `Assistant` and the
server's settings); `rag.serve` runs it as a Ray Serve deployment, one state per replica.

    POST /v1/ask                {"question", "conversation_id"?, "k"?}  -> the Answer (as `rag ask --json`)
    POST /v1/ask/stream         same body -> Server-Sent Events: `delta` {"text"}..., then `answer` {...}
    POST /v1/feedback           {"answer_id", "good", "comment"?}
    GET|POST /v1/corrections    list / add; POST /v1/corrections/{id}/disable|enable  (bearer token)
    POST /v1/chat/completions   OpenAI-compatible, streaming too; sources in the extra `rag` field
    GET  /v1/models, /healthz, /  (the chat page), /static/chat.js, /static/chat.css

Hardening: request bodies are capped (413), questions are capped (422), each client address
gets a token bucket (429 with Retry-After), corrections routes need a bearer token compared
in constant time and are off without one, CORS is off unless origins are configured, and
sources are returned as data (links and paths), never read from the server's disk.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import uuid
from importlib import resources
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field

from indexes.errors import IndexNotFoundError, MissingExtraError, RagError
from rag.assistant import Assistant
from rag.config import Config
from rag.types import Answer

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response, StreamingResponse
except ImportError as exc:  # pragma: no cover
    raise MissingExtraError("fastapi", "serve") from exc

log = logging.getLogger(__name__)

PAGE_FILES = {  # the only files the server sends from disk: fixed names inside the package
    "index.html": "text/html; charset=utf-8",
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
}
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class RateLimiter:
    """A token bucket per client: `per_minute` requests, refilled continuously; 0 is no limit."""

    def __init__(self, per_minute: int, max_clients: int = 10_000):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0.0 if the request may go ahead, else the seconds until it may."""
        if self.capacity <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_clients:  # forget clients whose bucket is full again
                idle = self.capacity / self.rate
                self._buckets = {c: v for c, v in self._buckets.items() if now - v[1] < idle}
            return 0.0


class ServerState:
    """What one replica holds: the assistant (models loaded once) and the limits."""

    def __init__(self, config: Config, assistant: Assistant | None = None, warm_up: bool = True):
        self.config = config
        self.assistant = assistant or Assistant(config)
        self.limiter = RateLimiter(config.serve_rate_limit)
        self.started = time.time()
        if warm_up:  # load models and open stores now, not on the first question
            self.assistant.warm_up()
            self.assistant.status()
            self.assistant.corrections.list(include_inactive=False)


# -- request bodies -----------------------------------------------------------------------
class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1)
    conversation_id: str | None = Field(None, pattern=ID_PATTERN)
    k: int | None = Field(None, ge=1, le=50)

class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer_id: str = Field(pattern=ID_PATTERN)
    good: bool
    comment: str | None = Field(None, max_length=4000)

class CorrectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str = Field(min_length=1, max_length=20_000)
    answer_id: str | None = Field(None, pattern=ID_PATTERN)
    question: str | None = Field(None, max_length=4000)
    reason: str | None = Field(None, max_length=4000)
    author: str = Field("api", max_length=200)
    sources: list[str] | None = Field(None, max_length=50)

class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "".join(p.get("text", "") for p in self.content if p.get("type") == "text")
        return self.content or ""

class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send many fields we ignore
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = False


def _page_file(name: str) -> bytes:
    return resources.files("rag").joinpath("static", name).read_bytes()


class BodyLimit:
    """ASGI middleware: a request body larger than `max_bytes` is refused with 413, declared or not."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                return await _send_json(send, 400, {"error": "invalid Content-Length"})
            if too_large:
                return await _send_json(send, 413, {"error": f"request body over {self.max_bytes} bytes"})
            return await self.app(scope, receive, send)
        # no length declared (chunked): read it all, within the limit, then replay it
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await _send_json(send, 413, {"error": f"request body over {self.max_bytes} bytes"})
            if not message.get("more_body"):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


async def _send_json(send, status: int, data: dict) -> None:
    body = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(state: ServerState):
    """The FastAPI app over one `ServerState`."""

    config = state.config
    assistant = state.assistant

    app = FastAPI(title="rag assistant", version="1", docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def headers_and_log(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # method, path and status only: never bodies, questions or the Authorization header
        log.info("%s %s %s %.0fms", request.method, request.url.path, response.status_code,
                 (time.perf_counter() - started) * 1000)
        return response

    if config.serve_cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.serve_cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["Content-Type", "Authorization"])
    app.add_middleware(BodyLimit, max_bytes=config.serve_max_request_kb * 1024)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"error": "invalid request: " + "; ".join(problems)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(IndexNotFoundError)
    async def no_index(request: Request, exc: IndexNotFoundError):
        return JSONResponse({"error": str(exc)}, status_code=503)

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        ref = uuid.uuid4().hex[:8]
        log.error("internal error %s on %s %s", ref, request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": f"internal error (reference {ref})"}, status_code=500)

    def limit(request: Request) -> None:
        wait = state.limiter.take(request.client.host if request.client else "unknown")
        if wait > 0:
            raise HTTPException(429, "too many requests", headers={"Retry-After": str(max(1, round(wait)))})

    def check_question(question: str) -> str:
        question = question.strip()
        if not question:
            raise HTTPException(422, "the question is empty")
        if len(question) > config.serve_max_question_chars:
            raise HTTPException(422, f"the question is over {config.serve_max_question_chars} characters")
        return question

    def admin(request: Request) -> None:
        token = config.serve_admin_token
        if token is None:  # no token configured: the routes do not exist
            raise HTTPException(404, "Not Found")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if not (scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)):
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    # -- the page ---------------------------------------------------------------------------
    def page(name: str) -> Response:
        headers = {"Cache-Control": "no-cache"}
        if name == "index.html":
            headers["Content-Security-Policy"] = PAGE_POLICY
        return Response(_page_file(name), media_type=PAGE_FILES[name], headers=headers)

    @app.get("/", include_in_schema=False)
    def index_page():
        return page("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in PAGE_FILES or name == "index.html":  # a fixed list, never a path
            raise HTTPException(404, "Not Found")
        return page(name)

    @app.get("/healthz")
    def healthz():
        status = assistant.status()
        ok = status["chunks"] > 0
        return JSONResponse({"status": "ok" if ok else "empty index", "chunks": status["chunks"],
                             "files": status["files"], "uptime_s": round(time.time() - state.started)},
                            status_code=200 if ok else 503)

    # -- asking -----------------------------------------------------------------------------
    @app.post("/v1/ask")
    def ask(body: AskRequest, request: Request):
        limit(request)
        answer = assistant.ask(check_question(body.question), k=body.k, conversation_id=body.conversation_id)
        # the sources come back even when the LLM failed; the status says it did
        return JSONResponse(answer.to_dict(), status_code=502 if answer.error else 200)

    @app.post("/v1/ask/stream")
    def ask_stream(body: AskRequest, request: Request):
        limit(request)
        question = check_question(body.question)

        def events() -> Iterator[str]:
            try:
                for item in assistant.stream(question, k=body.k, conversation_id=body.conversation_id):
                    if isinstance(item, Answer):
                        yield _sse("answer", item.to_dict())
                    else:
                        yield _sse("delta", {"text": item})
            except RagError as exc:
                yield _sse("error", {"error": str(exc)})
            except Exception as exc:
                ref = uuid.uuid4().hex[:8]
                log.error("internal error %s while streaming", ref, exc_info=exc)
                yield _sse("error", {"error": f"internal error (reference {ref})"})

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/feedback")
    def feedback(body: FeedbackRequest, request: Request):
        # Open to the page's users: the answer id (random, 128 bits) is what grants it.
        limit(request)
        if assistant.corrections.get_answer(body.answer_id) is None:
            raise HTTPException(404, f"no answer with id {body.answer_id!r}")
        assistant.feedback(body.answer_id, body.good, body.comment)
        return {"ok": True}

    # -- corrections (admin) ----------------------------------------------------------------
    @app.get("/v1/corrections")
    def corrections_list(request: Request, include_inactive: bool = True):
        admin(request)
        return {"corrections": [c.to_dict() for c in assistant.corrections.list(include_inactive)]}

    @app.post("/v1/corrections", status_code=201)
    def corrections_add(body: CorrectionRequest, request: Request):
        admin(request)
        correction = assistant.correct(body.answer, answer_id=body.answer_id, question=body.question,
                                       reason=body.reason, author=body.author, sources=body.sources)
        return correction.to_dict()

    def set_active(correction_id: str, active: bool) -> dict:
        if not assistant.corrections.update(correction_id, active=active):
            raise HTTPException(404, f"no correction with id {correction_id!r}")
        return assistant.corrections.get(correction_id).to_dict()

    @app.post("/v1/corrections/{correction_id}/disable")
    def corrections_disable(correction_id: str, request: Request):
        admin(request)
        return set_active(correction_id, False)

    @app.post("/v1/corrections/{correction_id}/enable")
    def corrections_enable(correction_id: str, request: Request):
        admin(request)
        return set_active(correction_id, True)

    # -- OpenAI-compatible facade -----------------------------------------------------------
    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": "rag", "object": "model", "created": int(state.started),
                                            "owned_by": "rag"}]}

    @app.post("/v1/chat/completions")
    def chat_completions(body: ChatRequest, request: Request):
        limit(request)
        turns = [m for m in body.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1].role != "user":
            raise HTTPException(422, "the last message must be the user's question")
        question = check_question(turns[-1].text())
        history = [{"role": m.role, "content": m.text()} for m in turns[:-1]] or None
        model = body.model or "rag"
        created = int(time.time())
        if not body.stream:
            answer = assistant.ask(question, history=history)
            return JSONResponse({
                "id": f"chatcmpl-{answer.id}", "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                             "finish_reason": "stop"}],
                "usage": _usage(answer), "rag": answer.to_dict(),
            }, status_code=502 if answer.error else 200)

        chunk_id = f"chatcmpl-{uuid.uuid4().hex}"

        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
            data = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            try:
                for item in assistant.stream(question, history=history):
                    if isinstance(item, Answer):
                        yield chunk({}, "stop", usage=_usage(item), rag=item.to_dict())
                    else:
                        yield chunk({"content": item})
            except Exception as exc:
                log.error("chat stream failed", exc_info=exc)
                message = str(exc) if isinstance(exc, RagError) else "internal error"
                yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app


def _usage(answer: Answer) -> dict[str, int]:
    u = answer.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}
