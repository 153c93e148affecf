"""Integrations with other libraries and engines: thin layers over :class:`staticst.StaticSentenceTransformer`.

Each module is importable only with its library installed (its extra: ``pip install 'staticst[NAME]'``);
without it, importing the module raises :class:`~staticst.MissingDependencyError` naming the extra.
``import staticst`` (and ``import staticst.integrations``) imports none of them.

Distributed engines (see ``docs/scale.md``: when to use them, sizing workers, a cluster recipe):

- :mod:`staticst.integrations.ray` (extra ``ray``): Ray Data. ``EmbedBatches``, a callable class for
  ``Dataset.map_batches`` (one model per actor), and ``embed_dataset(ds, model, column=...)``.
- :mod:`staticst.integrations.spark` (extra ``spark``): PySpark. ``embedding_udf(model, ...)``, a
  ``pandas_udf`` / ``arrow_udf`` returning ``array<float>`` (one model per Python worker), and
  ``embed_column(df, model, column=...)``.

Libraries that take an embedding model:

- :mod:`staticst.integrations.langchain` (extra ``langchain``): LangChain ``Embeddings``.
- :mod:`staticst.integrations.llamaindex` (extra ``llamaindex``): LlamaIndex ``BaseEmbedding``.
- :mod:`staticst.integrations.chromadb` (extra ``chromadb``): a chromadb ``EmbeddingFunction``.
- :mod:`staticst.integrations.keybert` (extra ``keybert``): a KeyBERT backend.
- :mod:`staticst.integrations.bertopic` (extra ``bertopic``): a BERTopic backend.
- :mod:`staticst.integrations.mteb` (extra ``mteb``): mteb's encoder protocol.
"""
