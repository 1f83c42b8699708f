"""rag: a RAG application framework for production.

    from rag import Assistant
    answer = Assistant().ask("How do I ingest documents?")
    print(answer.text, [s.location for s in answer.sources])
"""

from indexes.types import Chunk, Hit
from rag.assistant import Assistant
from rag.config import Config
from rag.errors import RagError
from rag.types import Answer, Source, Usage

__version__ = "0.1.0"
__all__ = ["Answer", "Assistant", "Chunk", "Config", "Hit", "RagError", "Source", "Usage", "__version__"]
