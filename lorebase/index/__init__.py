"""Retrieval: embeddings, the FAISS dense index, BM25 and their fusion."""
