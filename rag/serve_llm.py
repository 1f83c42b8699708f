"""`rag serve-llm`: serve a model behind an OpenAI-compatible API.

- `llamacpp` (default): llama.cpp's server (llama-cpp-python[server]) on the CPU, with the
  bundled SmolLM2 or any GGUF file.
- `vllm`: Ray Serve LLM (vLLM) on GPUs, with replicas that autoscale.
"""

from __future__ import annotations

import logging

from indexes.errors import MissingExtraError, require

log = logging.getLogger(__name__)


def llamacpp_app(model: str | None, alias: str, n_ctx: int = 4096):
    """The llama.cpp OpenAI-compatible ASGI app for a GGUF file."""
    try:
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError as exc:
        raise MissingExtraError("llama-cpp-python[server]", "serve-llm") from exc
    from rag.llm import LocalChat

    path = str(LocalChat(model)._path())
    return create_app(
        server_settings=ServerSettings(),
        model_settings=[ModelSettings(model=path, model_alias=alias, n_ctx=n_ctx, verbose=False)],
    )


def serve_llamacpp(model: str | None, alias: str, host: str, port: int, n_ctx: int = 4096) -> None:
    uvicorn = require("uvicorn", "serve-llm")
    uvicorn.run(llamacpp_app(model, alias, n_ctx), host=host, port=port, log_level="warning")


def serve_vllm(model: str, alias: str, host: str, port: int, min_replicas: int = 1, max_replicas: int = 2,
               gpus_per_replica: int = 1) -> None:
    """Ray Serve LLM with vLLM: one engine per replica, autoscaling between min and max."""
    try:
        from ray import serve
        from ray.serve.llm import LLMConfig, build_openai_app
    except ImportError as exc:
        raise MissingExtraError("ray[serve,llm] and vllm", "vllm") from exc
    config = LLMConfig(
        model_loading_config={"model_id": alias, "model_source": model},
        deployment_config={"autoscaling_config": {"min_replicas": min_replicas, "max_replicas": max_replicas}},
        accelerator_type=None,
        engine_kwargs={"tensor_parallel_size": gpus_per_replica},
    )
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_openai_app({"llm_configs": [config]}), blocking=True)
