"""Hybrid retrieval over the knowledge base: dense encoders + FAISS, and BM25."""
