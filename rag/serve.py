"""`rag serve`: the assistant's HTTP app (`rag.server`) as a Ray Serve application.

Each replica builds its own `ServerState` (embedder, LLM, index and corrections store
loaded once) and the FastAPI app around it at start. Replicas and autoscaling come from
config: `serve_replicas`, `serve_max_replicas` (autoscale between the two when larger),
`serve_max_ongoing_requests`, `serve_replica_cpus`.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from typing import Any, Callable

from indexes.errors import MissingExtraError, RagError
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


def check_port(host: str, port: int) -> None:
    """Raise RagError, with what to do, when nothing could listen on host:port (in use, not allowed)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no reason
            probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise _port_in_use(host, port) from None
        reason = exc.strerror or str(exc)
        raise RagError(f"Cannot listen on {host}:{port} ({reason}); check --host and --port.") from None


def _port_in_use(host: str, port: int) -> RagError:
    return RagError(f"Port {port} on {host} is in use (another server?); pick another with --port.")


def run(config: Config, blocking: bool = True, on_ray_started: Callable[[], None] | None = None):
    """Start Ray (or join RAY_ADDRESS) and Ray Serve on config.serve_host:serve_port, then the app.

    `on_ray_started` runs once Ray is up, before Serve starts: the place for the caller's
    signal handlers, since `ray.init` replaces those of SIGTERM.
    """
    from pipelines.ingest import ensure_ray
    from rag.server import check_admin_token

    check_admin_token(config.admin_token)  # here, not as a replica that fails to start
    if not os.environ.get("RAY_ADDRESS"):  # on a cluster the proxies listen elsewhere, or already do
        check_port(config.serve_host, config.serve_port)  # before Ray's start, not after it

    ensure_ray()
    if on_ray_started:
        on_ray_started()
    from ray import serve

    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # the CLI says what matters itself
    try:
        serve.start(http_options={"host": config.serve_host, "port": config.serve_port},
                    logging_config={"log_level": "WARNING", "enable_access_log": False})
        return serve.run(build_application(config), name=APP_NAME, route_prefix="/", blocking=blocking)
    except Exception as exc:
        if "Failed to bind to address" in str(exc):  # taken between the check and Serve's proxy
            raise _port_in_use(config.serve_host, config.serve_port) from exc
        raise


def shutdown() -> None:
    """Stop this application; on a shared cluster (RAY_ADDRESS) the others keep running."""
    from ray import serve

    if os.environ.get("RAY_ADDRESS"):
        serve.delete(APP_NAME)
    else:
        serve.shutdown()
