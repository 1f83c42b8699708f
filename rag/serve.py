"""`rag serve`: the assistant's HTTP app (`rag.server`) as a Ray Serve application.

Each replica builds its own `ServerState` (embedder, LLM, index and corrections store
loaded once) and the FastAPI app around it at start. Replicas and autoscaling come from
config: `serve_replicas`, `serve_max_replicas` (autoscale between the two when larger),
`serve_max_ongoing_requests`, `serve_replica_cpus`.
"""

from __future__ import annotations

import logging
from typing import Any

from indexes.errors import MissingExtraError
from rag.config import Config

log = logging.getLogger(__name__)

APP_NAME = "rag"


def deployment_options(config: Config) -> dict[str, Any]:
    """Ray Serve options for the assistant deployment, from config."""
    options: dict[str, Any] = {
        "max_ongoing_requests": config.serve_max_ongoing_requests,
        "ray_actor_options": {"num_cpus": config.serve_replica_cpus},
        "health_check_period_s": 10,
        "graceful_shutdown_timeout_s": 30,
    }
    if config.serve_max_replicas > config.serve_replicas:
        options["autoscaling_config"] = {
            "min_replicas": config.serve_replicas,
            "max_replicas": config.serve_max_replicas,
            # the embedded model answers one question at a time: scale on the first one waiting
            "target_ongoing_requests": 1 if config.llm_base_url is None else max(1, config.serve_max_ongoing_requests // 2),
        }
    else:
        options["num_replicas"] = config.serve_replicas
    return options


def build_application(config: Config):
    """The bound Ray Serve application: one deployment whose replicas serve `create_app`."""
    try:
        from ray import serve
    except ImportError as exc:
        raise MissingExtraError("ray[serve]", "serve") from exc

    @serve.deployment(name="assistant")
    @serve.ingress()
    class AssistantServer:
        def __init__(self, config: Config):
            from rag.server import ServerState

            # to the replica's log file (Ray's logs directory): access lines and error references
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logging.getLogger("rag").addHandler(handler)
            logging.getLogger("rag").setLevel(logging.INFO)
            self.state = ServerState(config)

        def __serve_build_asgi_app__(self):
            from rag.server import create_app

            return create_app(self.state)

        def check_health(self) -> None:
            if self.state.assistant.index.info() is None:  # one row, not a count over every chunk
                raise RuntimeError("the index is gone")  # Serve restarts the replica

    return AssistantServer.options(**deployment_options(config)).bind(config)


def run(config: Config, blocking: bool = True):
    """Start Ray (or join RAY_ADDRESS) and Ray Serve on config.serve_host:serve_port, then the app."""
    from pipelines.ingest import ensure_ray
    from rag.server import check_admin_token

    check_admin_token(config.admin_token)  # here, not as a replica that fails to start

    ensure_ray()
    from ray import serve

    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # the CLI says what matters itself
    serve.start(http_options={"host": config.serve_host, "port": config.serve_port},
                logging_config={"log_level": "WARNING", "enable_access_log": False})
    return serve.run(build_application(config), name=APP_NAME, route_prefix="/", blocking=blocking)


def shutdown() -> None:
    """Stop this application; on a shared cluster (RAY_ADDRESS) the others keep running."""
    import os

    from ray import serve

    if os.environ.get("RAY_ADDRESS"):
        serve.delete(APP_NAME)
    else:
        serve.shutdown()
