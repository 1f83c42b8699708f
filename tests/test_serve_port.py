"""`rag serve` on a port that is taken: one clear line, before Ray starts (or when Ray's proxy cannot bind)."""

import importlib
import socket

import pytest

from rag import serve as server
from rag.config import Config
from rag.errors import RagError


ingest_module = importlib.import_module("pipelines.ingest")  # `pipelines.ingest` is also a function


@pytest.fixture
def taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_check_port_passes_a_free_port_and_names_a_taken_one(taken_port):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    server.check_port("127.0.0.1", free)
    with pytest.raises(RagError) as info:
        server.check_port("127.0.0.1", taken_port)
    assert str(info.value) == f"Port {taken_port} on 127.0.0.1 is in use (another server?); pick another with --port."


def test_run_refuses_a_taken_port_before_starting_ray(taken_port, monkeypatch):
    def no_ray():
        raise AssertionError("Ray was started for a port that is taken")

    monkeypatch.setattr(ingest_module, "ensure_ray", no_ray)
    with pytest.raises(RagError, match=f"Port {taken_port} on 127.0.0.1 is in use"):
        server.run(Config(serve_port=taken_port), blocking=False)


def test_rays_bind_failure_becomes_the_same_line(monkeypatch):
    """Taken between the check and the start of Serve's proxy: Ray's error, with its remote traceback, is replaced."""
    serve = pytest.importorskip("ray.serve")

    def proxy_cannot_bind(**options):
        raise RuntimeError("ray::ProxyActor.ready() (pid=1, ip=127.0.0.1)\n  File \"proxy.py\", line 1, in ready\n"
                           "RuntimeError: Failed to bind to address '127.0.0.1:8767'.")

    monkeypatch.setattr(ingest_module, "ensure_ray", lambda: None)
    monkeypatch.setattr(server, "check_port", lambda host, port: None)
    monkeypatch.setattr(serve, "start", proxy_cannot_bind)
    with pytest.raises(RagError) as info:
        server.run(Config(serve_port=8767), blocking=False)
    assert str(info.value) == "Port 8767 on 127.0.0.1 is in use (another server?); pick another with --port."
