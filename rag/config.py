"""One typed config: defaults, then a TOML file, then RAG_* environment variables, then
explicit arguments. Secrets come from the environment and are never serialized."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from indexes.errors import ConfigError
from pipelines.discover import DEFAULT_EXTENSIONS

ENV_PREFIX = "RAG_"
SECRETS = {"llm_api_key", "serve_admin_token"}  # from the environment (or Python), never from a config file


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # where
    index: str = Field(".rag", description="Index location: a directory (FAISS) or a postgresql:// URL (pgvector).")
    pg_ef_search: int = Field(100, ge=1, description="pgvector HNSW ef_search: candidates examined per query.")
    # ingestion
    embedding_model: str = Field("all-MiniLM-L6-v2", description="Bundled model name or a local sentence-transformers directory.")
    embedding_backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "auto", description="What runs the embedding model: auto (ONNX Runtime int8 on a CPU, PyTorch on a GPU), "
                            "torch, onnx (fp32) or onnx-int8.")
    chunk_tokens: int = Field(256, ge=16, description="Chunk size in the embedder's tokens (capped at its maximum).")
    chunk_overlap: int = Field(32, ge=0, description="Overlap between consecutive chunks, in tokens.")
    extensions: list[str] = Field(list(DEFAULT_EXTENSIONS), description="File types to ingest.")
    source_url: str | None = Field(None, description="URL template for sources, e.g. https://site/{path}.html")
    parser: Literal["auto", "unstructured"] = Field("auto", description="auto: built-in parsers, unstructured for the long tail; unstructured: for every file.")
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are reported and skipped.")
    parse_timeout: float = Field(120.0, ge=0, description="Seconds one file may take to parse (0: no limit).")
    embed_batch_size: int = Field(32, ge=1)
    embed_actors: int = Field(1, ge=1, description="Embedding actors in the Ray Data pool.")
    # retrieval and answering
    top_k: int = Field(5, ge=1, description="Chunks retrieved per question.")
    retrieval_mode: Literal["dense", "lexical", "hybrid"] = Field("hybrid", description="Dense vectors, keyword BM25, or both fused by reciprocal rank fusion.")
    retrieval_candidates: int = Field(100, ge=1, description="Hits taken from each retriever before fusion, diversity and reranking.")
    per_source: int = Field(1, ge=0, description="Most chunks retrieved from one page (URL without anchor, or file); 0: no limit.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    dense_weight: float = Field(1.0, ge=0.0)
    lexical_weight: float = Field(1.0, ge=0.0)
    reranker: str = Field("none", description="none | llm | cross-encoder:/path/to/local/model")
    rerank_candidates: int = Field(20, ge=1, description="Retrieved hits the reranker orders before the top k are kept.")
    context_tokens: int = Field(1200, ge=16, description="Budget for context blocks in the answer prompt, in the LLM's tokens.")
    prompt: str = Field("answer", description="Answer prompt template name.")
    prompts_dir: str | None = Field(None, description="Directory with your own prompt templates.")
    # corrections and feedback
    corrections: bool = Field(True, description="Look up human corrections before answering.")
    corrections_mode: Literal["verbatim", "guide"] = Field("verbatim", description="verbatim: the correction is the answer; guide: the model answers with the correction as authoritative, cited context.")
    corrections_judge: Literal["none", "llm"] = Field("none", description="llm: a capable chat model (job_llms judge, or the answering model) decides whether a question "
                                    "asks what a correction's question asks, for every pair the matcher's classifier finds plausible.")
    corrections_judge_calls: int = Field(2, ge=1, description="With corrections_judge = llm: at most this many judge calls per question, nearest corrections first.")
    corrections_judge_floor: float | None = Field(None, ge=0, le=1, description="With corrections_judge = llm: the judge is asked from this similarity up "
                                                  "(default: the matcher's, 0.1 below its band); it can only widen the zone, down from the band.")
    corrections_judge_min: float | None = Field(None, ge=0, le=1, description="With corrections_judge = llm: the judge is asked only about pairs the matcher's classifier "
                                                "gives at least this probability of a paraphrase (default: the matcher's judge_min, 0.3); 0 for every pair not about something else.")
    corrections_margin: float = Field(0.05, ge=0, le=1, description="Where the matcher's classifier decides (no LLM judge), a correction applies "
                                      "only if no other with another answer is as near or within this much of its similarity (0: off); "
                                      "otherwise a reviewer decides.")
    corrections_offers: int = Field(2, ge=0, le=5, description="When no correction applies, the answer names at most this many near the "
                                    "question (from the matcher's offer floor, not about something else; related_corrections), "
                                    "for the asker to confirm; 0: none.")
    corrections_offer_floor: float | None = Field(None, ge=0, le=1, description="The similarity from which corrections are offered "
                                                  "(default: the matcher's offer floor, 0.34 for the default matcher); higher: fewer offers, "
                                                  "to fewer of the askers whose question a correction answers.")
    corrections_confirmed: Literal["review", "apply"] = Field("review", description="What an asker's confirmation of a related correction "
                                                              "writes: review: a same_as link that waits for a reviewer (first in the review queue); "
                                                              "apply: a same_as link that applies at once to that wording.")
    history_turns: int = Field(3, ge=0, description="Earlier turns of a conversation given to the follow-up rewrite (and retrieved with it when the rewrite is not a question).")
    log_answers: bool = Field(True, description="Log every answer (question, answer, sources, model) for feedback and corrections.")
    # the LLM
    llm_backend: Literal["auto", "local", "openai", "fake"] = Field(
        "auto", description="auto: an OpenAI-compatible endpoint when llm_base_url is set, else the local model."
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1")
    llm_model: str | None = Field(None, description="Model name at the endpoint.")
    llm_api_key: SecretStr | None = Field(None, exclude=True, description="Read from RAG_LLM_API_KEY; never stored.")
    llm_local_model: str | None = Field(None, description="GGUF file for the embedded model (default: bundled SmolLM2-135M-Instruct).")
    llm_context: int = Field(4096, ge=512, description="Context window of the local model, in tokens.")
    llm_max_tokens: int = Field(256, ge=1, description="Longest answer, in tokens.")
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0)
    llm_grammar: Literal["auto", "citations", "none"] = Field(
        "auto", description="citations: where the model supports grammars (embedded llama.cpp models), it must write up "
                            "to three sentences of at most 200 characters, no brackets or line breaks, each ending "
                            "with a citation [n], or say it does not know. Fixes the format, not which block a weak "
                            "model cites. none: the model writes freely (endpoints always do). auto: citations for "
                            "the bundled SmolLM2, which rarely cites on its own; none for any other model.")
    citation_attribution: bool = Field(
        False, description="When the model cites no block, list as sources the blocks that hold most of the words of an "
                           "answer sentence (marked attributed), instead of every retrieved block.")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds before an endpoint call is abandoned.")
    llm_max_retries: int = Field(3, ge=0)
    job_llms: dict[Literal["rewrite", "rerank", "judge"], dict[Literal["base_url", "model"], str]] = Field(
        default_factory=dict,
        description='A model per job: {"rewrite": {"base_url": "local"}, "rerank": {"base_url": URL, "model": NAME}, '
                    '"judge": {...}}; jobs not listed use the answering model.')
    prices: dict[str, Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(
        default_factory=dict, description="USD per million [input, output] tokens by model name; added to the built-in table.")
    price_model: str | None = Field(None, description="Price answers as this model (default: the answering model's name).")

    # the assistant server (rag serve)
    serve_host: str = Field("127.0.0.1", description="Interface `rag serve` binds to; 0.0.0.0 exposes it to the network.")
    serve_port: int = Field(8000, ge=0, le=65535)
    serve_replicas: int = Field(1, ge=1, description="Ray Serve replicas (each loads the embedder and, if local, the LLM).")
    serve_max_replicas: int = Field(1, ge=1, description="Above serve_replicas: autoscale between the two on load.")
    serve_max_ongoing_requests: int = Field(16, ge=1, description="Requests one replica works on at once; more wait in Serve's queue.")
    serve_replica_cpus: float = Field(1.0, ge=0.0, description="CPUs Ray reserves per replica.")
    serve_admin_token: SecretStr | None = Field(None, exclude=True, description="Bearer token for /v1/corrections (RAG_SERVE_ADMIN_TOKEN); unset: those routes are off.")
    serve_max_request_kb: int = Field(64, ge=1, description="Largest request body, in KiB (413 above).")
    serve_max_question_chars: int = Field(2000, ge=1, description="Longest question or chat message accepted (422 above).")
    serve_heartbeat_s: float = Field(15.0, ge=0.0, description="A stream that has sent nothing for this long sends an SSE comment, so that proxies keep it open while it waits; 0: never.")
    serve_rate_limit: int = Field(60, ge=0, description="Requests per minute per client address (429 above); 0: no limit.")
    serve_cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the API from a browser; empty: CORS off.")

    @model_validator(mode="after")
    def _priced(self) -> "Config":
        """A price_model with no price would price every answer at 0 without a word."""
        if self.price_model is not None:
            from rag.pricing import price_table

            known = price_table(self.prices)
            if self.price_model not in known:
                raise ValueError(f"price_model {self.price_model!r} has no price: add it to prices "
                                 f"({{{self.price_model!r}: [input, output]}}, USD per million tokens), or use one of "
                                 f"{', '.join(sorted(known))}")
        return self

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **overrides: Any) -> "Config":
        """Defaults < TOML (`path`, RAG_CONFIG, or ./rag.toml) < RAG_* environment < overrides (None ignored)."""
        values: dict[str, Any] = {}
        path = path or os.environ.get("RAG_CONFIG") or ("rag.toml" if Path("rag.toml").exists() else None)
        if path:
            try:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"Cannot read config file {path}: {exc}") from None
            values.update(data.get("rag", data))
            secrets = sorted(SECRETS & values.keys())
            if secrets:
                raise ConfigError(f"{', '.join(secrets)} in {path}: keep secrets out of config files; set "
                                  + " and ".join(ENV_PREFIX + s.upper() for s in secrets) + " in the environment.")
        for name, field in cls.model_fields.items():
            raw = os.environ.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                if get_origin(field.annotation) is dict:  # RAG_JOB_LLMS, RAG_PRICES: JSON
                    try:
                        values[name] = json.loads(raw)
                    except json.JSONDecodeError as exc:
                        raise ConfigError(f"{ENV_PREFIX + name.upper()} is not JSON ({exc.msg}); give a JSON object, "
                                          "as in the config file") from None
                else:
                    values[name] = raw.split(",") if field.annotation == list[str] else raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls._validated(values)

    @classmethod
    def _validated(cls, values: dict[str, Any]) -> "Config":
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(f"Invalid configuration: {explain(exc)}") from None

    def updated(self, **changes: Any) -> "Config":
        """A copy with `changes` (None ignored), validated as `load` validates."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update({k: v for k, v in changes.items() if v is not None})
        return self._validated(values)

    def to_dict(self) -> dict[str, Any]:
        """Round-trips through `Config(**d)`; the API key is left out."""
        return self.model_dump(mode="json")

    @property
    def admin_token(self) -> str:
        """`serve_admin_token` without surrounding blanks; "" when unset or blank (admin off)."""
        return self.serve_admin_token.get_secret_value().strip() if self.serve_admin_token else ""


def explain(exc: ValidationError, sources: bool = True) -> str:
    """A settings error in one line per setting: its name, where it can come from (with
    `sources`), what is wrong, and the value given (unless the setting holds a secret)."""
    parts = []
    for error in exc.errors(include_url=False):
        if not error["loc"]:  # a check across settings: its own message says which
            parts.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        name = ".".join(str(part) for part in error["loc"])
        field = Config.model_fields.get(str(error["loc"][0]))
        secret = (field is None or "Secret" in str(field.annotation) or error["type"] == "extra_forbidden"
                  or isinstance(error.get("input"), dict))  # a mistyped name may hold a secret too
        given = "" if secret else f" (got {error.get('input')!r})"
        where = f" ({ENV_PREFIX}{str(error['loc'][0]).upper()}, the config file or an option)" if sources and field is not None else ""
        parts.append(f"{name}{where}: {error['msg']}{given}")
    return "; ".join(parts)
