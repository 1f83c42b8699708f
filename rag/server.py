"""The assistant over HTTP: a FastAPI app with the API and the chat page.

`create_app(state)` builds the app around one `ServerState` (an `Assistant` and the
server's settings); `rag.serve` runs it as a Ray Serve deployment, one state per replica.

    POST /v1/ask                {"question", "conversation_id"?, "k"?}  -> the Answer (as `rag ask --json`)
    POST /v1/ask/stream         same body -> Server-Sent Events: `delta` {"text"}..., then `answer` {...}
    POST /v1/feedback           {"answer_id", "good", "comment"?}
    POST /v1/feedback/confirm   {"answer_id", "correction_id"}: one of the answer's related_corrections, confirmed
    GET|POST /v1/corrections    list / add; POST /v1/corrections/{id}/disable|enable,
                                GET /v1/corrections/suggestions, GET /v1/feedback[/open]  (bearer token)
    POST /v1/chat/completions   OpenAI-compatible, streaming too; sources in the extra `rag` field
    GET  /v1/models, /healthz, /  (the chat page), /review (the reviewers' page, with a token),
         /static/chat.js, /static/chat.css, /static/review.js

Hardening: request bodies are capped (413), questions are capped (422), each client address
gets a token bucket (429 with Retry-After), corrections routes need a bearer token compared
in constant time and are off without one, CORS is off unless origins are configured, a
server on loopback only answers to loopback host names (DNS rebinding), errors tell the
public a reference and the log the details, and sources are returned as data (links and
paths), never read from the server's disk.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import queue
import threading
import time
import uuid
from collections import OrderedDict
from importlib import resources
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field

from indexes.errors import ConfigError, ConflictError, MissingExtraError, NotFoundError, RagError
from rag.assistant import Assistant
from rag.config import Config
from rag.guard import clean_text as _clean  # user text reaches operators' terminals
from rag.types import Answer

try:
    import anyio
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import ClientDisconnect
except ImportError as exc:  # pragma: no cover
    raise MissingExtraError("fastapi", "serve") from exc

log = logging.getLogger(__name__)

PAGE_FILES = {  # the only files the server sends from disk: fixed names inside the package
    "index.html": "text/html; charset=utf-8",
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "review.html": "text/html; charset=utf-8",
    "review.js": "text/javascript; charset=utf-8",
}
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CONVERSATION_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"  # a secret: whoever has it reads and extends the conversation
MIN_TOKEN_CHARS = 16
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
PUBLIC_LLM_ERROR = "The language model could not generate an answer; the retrieved sources are listed."


class RateLimiter:
    """A token bucket per client: `per_minute` requests, refilled continuously; 0 is no limit."""

    def __init__(self, per_minute: int, max_clients: int = 10_000):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0.0 if the request may go ahead, else the seconds until it may."""
        if self.capacity <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)  # most recent last
            while len(self._buckets) > self.max_clients:  # bounded: forget the longest idle
                self._buckets.popitem(last=False)
            return 0.0 if allowed else (1.0 - tokens) / self.rate


def check_admin_token(token: str) -> None:
    """A token a guess cannot find: at least MIN_TOKEN_CHARS characters ("" turns the admin routes off)."""
    if token and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"serve_admin_token is too short: use at least {MIN_TOKEN_CHARS} random characters "
                          "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`).")


class ServerState:
    """What one replica holds: the assistant (models loaded once) and the limits."""

    def __init__(self, config: Config, assistant: Assistant | None = None, warm_up: bool = True):
        self.config = config
        self.assistant = assistant or Assistant(config)
        self.limiter = RateLimiter(config.serve_rate_limit)
        self.started = time.time()
        token = config.admin_token
        check_admin_token(token)
        self.admin_token = token.encode() or None  # blank: the admin routes are off
        if warm_up:  # load every model and open every store now, not on the first questions
            self.assistant.warm_up()
            self.assistant.status()
            self.assistant.corrections.list(include_inactive=False)
            self.assistant.retriever  # noqa: B018
            self.assistant.llm_for("rewrite")
            if self.assistant.reranker is not None:
                self.assistant.reranker.warm_up()


# -- request bodies -----------------------------------------------------------------------
class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1)
    conversation_id: str | None = Field(None, pattern=CONVERSATION_PATTERN)
    k: int | None = Field(None, ge=1, le=50)

class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer_id: str = Field(pattern=ID_PATTERN)
    good: bool
    comment: str | None = Field(None, max_length=4000)

class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer_id: str = Field(pattern=ID_PATTERN)
    correction_id: str = Field(pattern=ID_PATTERN)


class CorrectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str | None = Field(None, min_length=1, max_length=20_000)
    answer_id: str | None = Field(None, pattern=ID_PATTERN)
    same_as: str | None = Field(None, pattern=ID_PATTERN)  # instead of an answer: a paraphrase it missed
    not_same_as: str | None = Field(None, pattern=ID_PATTERN)  # instead of an answer: it was applied wrongly
    question: str | None = Field(None, max_length=4000)
    reason: str | None = Field(None, max_length=4000)
    author: str = Field("api", min_length=1, max_length=200)
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


class ClosingStreamingResponse(StreamingResponse):
    """A stream whose source generator is closed when the response ends, also when the
    client went away: that is what releases the local model and upstream connections at once."""

    def __init__(self, source, **kwargs):
        self.source = source
        super().__init__(source, **kwargs)

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A worker thread may still be inside next() (the client left mid-token): close it
            # as soon as that returns.
            # Shielded: a disconnect also cancels this task, and the cleanup must still run.
            with anyio.CancelScope(shield=True):
                deadline = time.monotonic() + 300
                while True:
                    try:
                        await run_in_threadpool(self.source.close)
                        break
                    except ValueError:  # "generator already executing"
                        if time.monotonic() > deadline:
                            log.warning("a stream's source did not stop within 300 s of its client leaving")
                            break
                        await anyio.sleep(0.02)


_END = object()
HEARTBEAT = ": keep-alive\n\n"  # an SSE comment: clients ignore it, proxies see traffic


def with_heartbeats(source: Iterator[str], every: float) -> Iterator[str]:
    """`source`'s items, and a comment whenever none came for `every` seconds (a request
    waiting for the local model behind others, a slow first token), so that proxies and
    clients do not drop a stream that is merely waiting.

    The source runs in its own thread. Closing this generator stops it there at its next
    item, and closes it: that releases the model as before."""
    if every <= 0:
        yield from source
        return
    items: queue.Queue = queue.Queue(maxsize=256)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        failure = None
        try:
            for item in source:
                if not put(item):
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            failure = exc
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
        put((_END, failure))

    threading.Thread(target=produce, name="sse-source", daemon=True).start()
    try:
        while True:
            try:
                item = items.get(timeout=every)
            except queue.Empty:
                yield HEARTBEAT
                continue
            if isinstance(item, tuple) and item and item[0] is _END:
                if item[1] is not None:
                    raise item[1]
                return
            yield item
    finally:
        stop.set()


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(state: ServerState):
    """The FastAPI app over one `ServerState`."""
    config = state.config
    assistant = state.assistant
    app = FastAPI(title="rag assistant", version="1", docs_url=None, redoc_url=None)

    def openai_route(request: Request) -> bool:
        return request.url.path in ("/v1/chat/completions", "/v1/models")

    def error(request: Request, status: int, message: str, headers: dict | None = None) -> JSONResponse:
        """Errors as {"error": "..."}; on the OpenAI routes in OpenAI's shape, which its clients parse."""
        if openai_route(request):
            kind = "invalid_request_error" if status < 500 else "server_error"
            body: dict[str, Any] = {"error": {"message": message, "type": kind, "code": status}}
        else:
            body = {"error": message}
        return JSONResponse(body, status_code=status, headers=headers)

    def reference(exc: BaseException, where: str) -> str:
        """Log the details for the operator; give the client a reference to quote."""
        ref = uuid.uuid4().hex[:8]
        log.error("error %s %s: %s", ref, where, exc, exc_info=not isinstance(exc, RagError))
        return ref

    @app.middleware("http")
    async def headers_and_log(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.url.path.startswith(("/v1/corrections", "/v1/feedback")) and request.method == "GET":
            response.headers["Cache-Control"] = "no-store"  # users' questions and answers, to admins
        # method, path and status only: never bodies, questions or the Authorization header
        log.info("%s %s %s %.0fms", request.method, request.url.path, response.status_code,
                 (time.perf_counter() - started) * 1000)
        return response

    if config.serve_cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.serve_cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["Content-Type", "Authorization"])
    if config.serve_host in LOOPBACK:  # a page on another site cannot reach it by rebinding a DNS name
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "testserver"])
    app.add_middleware(BodyLimit, max_bytes=config.serve_max_request_kb * 1024)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()]
        return error(request, 422, "invalid request: " + "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError):
        if isinstance(exc, NotFoundError):  # an answer or a correction went between two reads
            return error(request, 404, exc.public)
        # the index, a model or the database is not available: the operator must act
        ref = reference(exc, f"on {request.method} {request.url.path}")
        return error(request, 503, f"the assistant is not available right now (reference {ref})")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        if isinstance(exc, ClientDisconnect):  # nobody is left to answer
            log.info("client left during %s %s", request.method, request.url.path)
            return Response(status_code=499)
        ref = reference(exc, f"on {request.method} {request.url.path}")
        return error(request, 500, f"internal error (reference {ref})")

    def limit(request: Request) -> None:
        wait = state.limiter.take(request.client.host if request.client else "unknown")
        if wait > 0:
            raise HTTPException(429, "too many requests", headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def check_question(question: str) -> str:
        question = _clean(question).strip()
        if not question:
            raise HTTPException(422, "the question is empty")
        if len(question) > config.serve_max_question_chars:
            raise HTTPException(422, f"the question is over {config.serve_max_question_chars} characters")
        return question

    def admin(request: Request) -> None:
        if state.admin_token is None:  # no token configured: the routes do not exist
            raise HTTPException(404, "Not Found")
        limit(request)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if not (scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), state.admin_token)):
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    def public(answer: Answer) -> dict[str, Any]:
        """The answer for clients: an LLM failure is described, not its upstream details."""
        data = answer.to_dict()
        data["feedback"] = assistant.config.log_answers  # feedback needs the logged answer
        if answer.error:
            log.warning("answer %s: the LLM failed: %s", answer.id, answer.error)
            data["error"] = PUBLIC_LLM_ERROR
        return data

    def stream_response(source: Iterator[str]) -> ClosingStreamingResponse:
        source = with_heartbeats(source, config.serve_heartbeat_s)
        return ClosingStreamingResponse(source, media_type="text/event-stream",
                                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # -- the page ---------------------------------------------------------------------------
    def page(name: str) -> Response:
        headers = {"Cache-Control": "no-cache"}
        if name.endswith(".html"):
            headers["Content-Security-Policy"] = PAGE_POLICY
        return Response(_page_file(name), media_type=PAGE_FILES[name], headers=headers)

    @app.get("/", include_in_schema=False)
    def index_page():
        return page("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in PAGE_FILES or name.endswith(".html"):  # a fixed list, never a path; pages at their routes
            raise HTTPException(404, "Not Found")
        return page(name)

    @app.get("/review", include_in_schema=False)
    def review_page():
        """The reviewers' page: answers marked wrong, the review queue, the corrections. It asks
        for the admin token and calls the admin routes with it; with no token configured, off."""
        if state.admin_token is None:
            raise HTTPException(404, "Not Found")
        return page("review.html")

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
        return JSONResponse(public(answer), status_code=502 if answer.error else 200)

    @app.post("/v1/ask/stream")
    def ask_stream(body: AskRequest, request: Request):
        limit(request)
        question = check_question(body.question)

        def events() -> Iterator[str]:
            yield ": connected\n\n"  # headers out at once: clients and proxies see a live stream while it queues
            try:
                for item in assistant.stream(question, k=body.k, conversation_id=body.conversation_id):
                    if isinstance(item, Answer):
                        yield _sse("answer", public(item))
                    else:
                        yield _sse("delta", {"text": item})
            except Exception as exc:
                ref = reference(exc, "while streaming an answer")
                yield _sse("error", {"error": f"the answer failed (reference {ref})"})

        return stream_response(events())

    @app.post("/v1/feedback")
    def feedback(body: FeedbackRequest, request: Request):
        # Open to the page's users: the answer id (random, 128 bits) is what grants it.
        limit(request)
        if assistant.corrections.get_answer(body.answer_id) is None:
            raise HTTPException(404, f"no answer with id {body.answer_id!r}")
        assistant.feedback(body.answer_id, body.good, _clean(body.comment))
        return {"ok": True}

    @app.post("/v1/feedback/confirm")
    def feedback_confirm(body: ConfirmRequest, request: Request):
        """The asker says their question asks what one of the answer's `related_corrections` answers:
        that correction's answer (as /v1/ask returns one), and the question linked to it (waiting
        for a reviewer by default). Open to the page's users, like feedback: the answer id grants it."""
        limit(request)
        if assistant.corrections.get_answer(body.answer_id) is None:
            raise HTTPException(404, f"no answer with id {body.answer_id!r}")
        try:
            answer = assistant.confirm(body.answer_id, body.correction_id, "asker")
        except ConflictError as exc:  # not (or no longer) the correction offered for that question
            raise HTTPException(409, str(exc)) from None
        return public(answer)

    # -- corrections (admin: errors in detail) ----------------------------------------------
    @app.get("/v1/feedback")
    def feedback_list(request: Request, bad: bool = False, limit: int = Query(200, ge=1, le=10_000)):
        """Feedback, newest first (as `rag feedback list`, which lists oldest first)."""
        admin(request)
        return {"feedback": [f.__dict__ for f in assistant.corrections.list_feedback(bad)[::-1][:limit]]}

    @app.get("/v1/feedback/open")
    def feedback_open(request: Request, limit: int = Query(200, ge=1, le=10_000)):
        """Answers marked wrong that wait for a reviewer, one per question (`rag feedback list --open`)."""
        admin(request)
        return {"feedback": assistant.wrong_answers(limit)}

    @app.get("/v1/corrections")
    def corrections_list(request: Request, include_inactive: bool = True):
        admin(request)
        return {"corrections": [c.to_dict() for c in assistant.corrections.list(include_inactive)]}

    @app.get("/v1/corrections/suggestions")
    def corrections_suggestions(request: Request, limit: int = Query(20, ge=1, le=500),
                                scan: int = Query(1000, ge=1, le=100_000),
                                min_similarity: float | None = Query(None, ge=-1.0, le=1.0)):
        """Questions a correction probably answers but was not applied to (`rag corrections suggest`)."""
        admin(request)
        return {"suggestions": assistant.suggest_links(limit=limit, scan=scan, min_similarity=min_similarity)}

    @app.get("/v1/corrections/overlaps")
    def corrections_overlaps(request: Request):
        """Pairs of active corrections that answer one question differently (`rag corrections overlaps`)."""
        admin(request)
        return {"overlaps": assistant.overlapping_corrections()}

    @app.post("/v1/corrections", status_code=201)
    def corrections_add(body: CorrectionRequest, request: Request):
        admin(request)
        try:
            correction = assistant.correct(_clean(body.answer), answer_id=body.answer_id,
                                           question=_clean(body.question), reason=_clean(body.reason),
                                           author=_clean(body.author),
                                           sources=None if body.sources is None else [_clean(x) for x in body.sources],
                                           same_as=body.same_as, not_same_as=body.not_same_as)
        except ConflictError as exc:  # another reviewer linked it the other way at the same moment
            raise HTTPException(409, str(exc)) from None
        except NotFoundError as exc:
            raise HTTPException(404, exc.public) from None
        except RagError as exc:
            raise HTTPException(400, str(exc)) from None
        try:  # written: corrections that answer what the matcher takes for the same question, differently
            overlaps = [o["b"] for o in assistant.overlaps_of(correction)]
        except Exception:  # noqa: BLE001 - informative only: the write succeeded
            log.exception("could not check correction %s for overlaps", correction.id)
            overlaps = None
        return correction.to_dict() | {"overlaps": overlaps}

    def set_active(correction_id: str, active: bool) -> dict:
        changes = {"active": True, "review": None} if active else {"active": False}  # as `rag corrections enable`
        if not assistant.corrections.update(correction_id, **changes):
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
        turns = [m for m in body.messages if m.role != "system"]  # the answer prompt is the server's
        if not turns or turns[-1].role != "user":
            raise HTTPException(422, "the last message must be the user's question")
        if any(m.role not in ("user", "assistant") for m in turns):
            raise HTTPException(422, "only system, user and assistant messages are supported")
        question = check_question(turns[-1].text())
        history = [{"role": m.role, "content": _clean(m.text())[:4000]} for m in turns[:-1]] or None
        model = body.model or "rag"
        created = int(time.time())
        if not body.stream:
            answer = assistant.ask(question, history=history)
            if answer.error:  # not retried by OpenAI clients: our own client already retried
                return JSONResponse({"error": {"message": PUBLIC_LLM_ERROR, "type": "server_error", "code": 502},
                                     "rag": public(answer)}, status_code=502, headers={"x-should-retry": "false"})
            return JSONResponse({
                "id": f"chatcmpl-{answer.id}", "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                             "finish_reason": "stop"}],
                "usage": _usage(answer), "rag": public(answer),
            })

        chunk_id = f"chatcmpl-{uuid.uuid4().hex}"

        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
            data = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        def failure(message: str) -> str:
            return f"data: {json.dumps({'error': {'message': message, 'type': 'server_error', 'code': 502}})}\n\n"

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            try:
                for item in assistant.stream(question, history=history):
                    if isinstance(item, Answer):
                        if item.error:  # OpenAI clients read an error event, not a blank success
                            yield failure(PUBLIC_LLM_ERROR)
                        yield chunk({}, "stop", usage=_usage(item), rag=public(item))
                    else:
                        yield chunk({"content": item})
            except Exception as exc:
                yield failure(f"the answer failed (reference {reference(exc, 'while streaming a chat completion')})")
            yield "data: [DONE]\n\n"

        return stream_response(events())

    return app


def _usage(answer: Answer) -> dict[str, int]:
    u = answer.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}
