"""Adapters to other RAG frameworks: rag's retrieval and answers as LangChain and LlamaIndex
components, and their documents ingested through rag's parser, chunker, embedder and index.

    from rag.integrations.langchain import AssistantRunnable, RagRetriever, ingest_documents
    from rag.integrations.llamaindex import RagRetriever, ingest_documents

Each adapter module imports its framework when it is imported, and raises
`MissingExtraError` naming the extra to install (`rag[langchain]`, `rag[llamaindex]`) when
the framework is missing; `import rag` never needs either. `rag.integrations.texts` holds
the framework-neutral part: ingesting documents that are text, not files.
"""
