"""The passage store: an exact FAISS inner-product index over normalised passage vectors.

A built store is an immutable, versioned artifact on disk:

    var/index/<version>/index.faiss      the vectors (row i = passage i)
    var/index/<version>/passages.json    the passages, in row order
    var/index/<version>/manifest.json    model, dimension, count, content hash, version, build time
    var/index/current                    the name of the version the app should load

`save` writes a version into a temporary folder and renames it into place, then swaps the `current` pointer,
so an app loading at the same moment sees either the old complete index or the new complete one.

Rows are the articles' passages and the patient questions they list (`Passage.kind`); the store scores every
row two ways, by cosine over the FAISS vectors and by BM25 over the words (`knowledge.lexical`, rebuilt in
memory on load, so nothing more is saved).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from knowledge.articles import Article, article_to_text, published_articles
from knowledge.chunking import Passage, chunk_article, question_rows
from knowledge.embedding import Embedder
from knowledge.lexical import LexicalIndex

INDEX_FILE = "index.faiss"
PASSAGES_FILE = "passages.json"
MANIFEST_FILE = "manifest.json"
CURRENT_POINTER = "current"


class IndexMismatchError(ValueError):
    """A saved index does not fit the embedder or is internally inconsistent; rebuild it."""


@dataclass(frozen=True)
class Manifest:
    """What a saved index was built from; checked on every load."""

    model_name: str
    dimension: int
    count: int
    content_hash: str
    version: str
    built_at: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        missing = [name for name in cls.__dataclass_fields__ if name not in data]
        if missing:
            raise IndexMismatchError(f"index manifest lacks {', '.join(missing)}; rebuild the index")
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


class PassageStore:
    """Passages plus their vectors in a FAISS `IndexFlatIP`; read-only once built or loaded."""

    def __init__(self, index: faiss.Index, passages: Iterable[Passage], manifest: Manifest) -> None:
        self._index = index
        self._passages = tuple(passages)
        self._manifest = manifest
        _check_consistent(index, self._passages, manifest)
        self.lexical = LexicalIndex([_lexical_text(passage) for passage in self._passages])

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def passages(self) -> tuple[Passage, ...]:
        """Every row, in row order: quotable passages and listed questions (`Passage.kind`)."""
        return self._passages

    @property
    def quotable(self) -> tuple[Passage, ...]:
        """The passages answers may quote (the articles' own text)."""
        return tuple(passage for passage in self._passages if passage.is_quotable)

    def __len__(self) -> int:
        return len(self._passages)

    @classmethod
    def build(
        cls,
        articles: Iterable[Article],
        embedder: Embedder,
        now: datetime | None = None,
        reuse: PassageStore | None = None,
    ) -> PassageStore:
        """Chunk and embed the published (approved) articles and the questions they list; drafts are never
        indexed.

        With `reuse` (the index being replaced, built by the same model), rows whose text it already holds
        keep their vectors, so publishing one article embeds only that article's rows.
        """
        published = sorted(published_articles(articles), key=lambda article: article.id)
        passages = [row for article in published for row in chunk_article(article) + question_rows(article)]
        vectors = _embed(passages, embedder, reuse)
        _check_vectors(vectors, len(passages), embedder.dimension)
        index = faiss.IndexFlatIP(embedder.dimension)
        index.add(vectors)
        built_at = (now or datetime.now(UTC)).astimezone(UTC)
        digest = content_hash(published)
        manifest = Manifest(
            model_name=embedder.model_name,
            dimension=embedder.dimension,
            count=len(passages),
            content_hash=digest,
            version=f"{digest[:12]}-{built_at:%Y%m%dT%H%M%SZ}",
            built_at=built_at.isoformat(timespec="seconds"),
        )
        return cls(index, passages, manifest)

    def vectors(self) -> np.ndarray:
        """Every passage's vector, in row order (a copy)."""
        if not self._passages:
            return np.zeros((0, self._manifest.dimension), dtype=np.float32)
        return self._index.reconstruct_n(0, len(self._passages))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[Passage, float]]:
        """The `k` passages with the highest inner product (= cosine) with the normalised `vector`."""
        k = min(k, len(self._passages))
        if k <= 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        scores, rows = self._index.search(query, k)
        return [
            (self._passages[row], float(score))
            for score, row in zip(scores[0], rows[0], strict=True)
            if row >= 0
        ]

    def dense_scores(self, vector: np.ndarray) -> np.ndarray:
        """The cosine of the normalised `vector` with every row, in row order."""
        count = len(self._passages)
        scores = np.zeros(count, dtype=np.float32)
        if count:
            query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
            found, rows = self._index.search(query, count)
            valid = rows[0] >= 0
            scores[rows[0][valid]] = found[0][valid]
        return scores

    def save(self, root: Path | str) -> Path:
        """Write this store as `root/<version>/` and point `root/current` at it; return the version folder.

        Saving the same build twice (e.g. two app instances starting together) is harmless; a different
        build that happens to carry the same version is refused.
        """
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        target = root / self._manifest.version
        if not target.exists():
            self._write_version(root, target)
        if _read_manifest(target) != self._manifest:
            raise FileExistsError(f"{target} holds a different build with the same version; build again")
        _write_atomically(root / CURRENT_POINTER, self._manifest.version + "\n")
        return target

    def _write_version(self, root: Path, target: Path) -> None:
        """Write into a staging folder, then rename it into place: readers never see half an index."""
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
        try:
            staging.chmod(0o755)  # mkdtemp makes it owner-only; the app may run as another user
            faiss.write_index(self._index, str(staging / INDEX_FILE))
            _write_json(staging / PASSAGES_FILE, [passage.to_dict() for passage in self._passages])
            _write_json(staging / MANIFEST_FILE, asdict(self._manifest))
            os.replace(staging, target)
        except OSError:
            if not target.exists():  # else a concurrent save of this version won the rename
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # nothing left there after a successful rename

    @classmethod
    def load(cls, directory: Path | str, embedder: Embedder) -> PassageStore:
        """Load a version folder (or the `current` version of an index root), refusing a mismatch."""
        folder = resolve_version_dir(directory)
        manifest = _read_manifest(folder)
        if (manifest.model_name, manifest.dimension) != (embedder.model_name, embedder.dimension):
            raise IndexMismatchError(
                f"index {manifest.version} was built with {manifest.model_name} ({manifest.dimension} dims) "
                f"but the embedder is {embedder.model_name} ({embedder.dimension} dims); rebuild the index"
            )
        passages = [
            Passage.from_dict(data) for data in json.loads((folder / PASSAGES_FILE).read_text("utf-8"))
        ]
        if any(passage.version is None for passage in passages):
            # Answers record the article version they quote; an index from before versions cannot say it.
            raise IndexMismatchError(f"index {manifest.version} does not record article versions; rebuild it")
        return cls(faiss.read_index(str(folder / INDEX_FILE)), passages, manifest)


def find_saved(root: Path | str, digest: str, embedder: Embedder) -> PassageStore | None:
    """A saved version of `root` built from exactly this content (`content_hash`) by this model, or None.

    The `current` version is tried first; other app instances sharing the folder may have built it already.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    folders = sorted((path for path in root.iterdir() if (path / MANIFEST_FILE).is_file()), reverse=True)
    pointer = root / CURRENT_POINTER
    if pointer.is_file():
        folders.insert(0, root / pointer.read_text(encoding="utf-8").strip())
    for folder in folders:
        try:
            manifest = _read_manifest(folder)
            if (manifest.content_hash, manifest.model_name) == (digest, embedder.model_name):
                return PassageStore.load(folder, embedder)
        except (OSError, ValueError, KeyError):  # half-pruned or foreign folders are skipped
            continue
    return None


def prune(root: Path | str, keep: int) -> list[str]:
    """Delete all but the `keep` newest versions (never the current one); returns the deleted names."""
    root = Path(root)
    pointer = root / CURRENT_POINTER
    current = pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else None
    versions = sorted(
        (path for path in root.iterdir() if (path / MANIFEST_FILE).is_file()),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    deleted = []
    for folder in versions[keep:]:
        if folder.name != current:
            shutil.rmtree(folder, ignore_errors=True)
            deleted.append(folder.name)
    return deleted


def resolve_version_dir(directory: Path | str) -> Path:
    """`directory` itself when it holds a manifest, else the version its `current` pointer names."""
    directory = Path(directory)
    if (directory / MANIFEST_FILE).is_file():
        return directory
    pointer = directory / CURRENT_POINTER
    if not pointer.is_file():
        raise FileNotFoundError(f"no knowledge index in {directory}: run `python -m knowledge build`")
    return directory / pointer.read_text(encoding="utf-8").strip()


def content_hash(articles: Iterable[Article]) -> str:
    """SHA-256 over the published articles' full text (front matter + body), in id order."""
    digest = hashlib.sha256()
    for article in sorted(published_articles(articles), key=lambda article: article.id):
        digest.update(_article_digest(article))
    return digest.hexdigest()


@lru_cache(maxsize=8192)
def _article_digest(article: Article) -> bytes:
    # Publishing hashes the whole knowledge base several times; rendering front matter is the slow part.
    return article_to_text(article).encode("utf-8") + b"\0"


def _embed(passages: list[Passage], embedder: Embedder, reuse: PassageStore | None) -> np.ndarray:
    texts = [passage.embedding_text for passage in passages]
    known: dict[str, np.ndarray] = {}
    if reuse is not None and (reuse.manifest.model_name, reuse.manifest.dimension) == (
        embedder.model_name,
        embedder.dimension,
    ):
        old_vectors = reuse.vectors()
        known = {p.embedding_text: old_vectors[row] for row, p in enumerate(reuse.passages)}
    missing = sorted({text for text in texts if text not in known})
    if missing:
        fresh = embedder.encode(missing)
        _check_vectors(fresh, len(missing), embedder.dimension)
        known.update(zip(missing, fresh, strict=True))
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    return np.ascontiguousarray(np.stack([known[text] for text in texts]), dtype=np.float32)


def _lexical_text(passage: Passage) -> str:
    # The title gives a paragraph its subject for words too ("Hold off until healed" is about makeup).
    return f"{passage.title}\n{passage.text}" if passage.is_quotable else passage.text


def _read_manifest(folder: Path) -> Manifest:
    return Manifest.from_dict(json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8")))


def _check_vectors(vectors: np.ndarray, count: int, dimension: int) -> None:
    if vectors.shape != (count, dimension) or vectors.dtype != np.float32:
        raise ValueError(
            f"embedder gave {vectors.dtype} {vectors.shape}, expected float32 ({count}, {dimension})"
        )
    if count and not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3):
        raise ValueError(
            "embedder gave vectors that are not L2-normalised: inner product would not be cosine"
        )


def _check_consistent(index: faiss.Index, passages: tuple[Passage, ...], manifest: Manifest) -> None:
    if not (index.ntotal == manifest.count == len(passages)):
        raise IndexMismatchError(
            f"index {manifest.version} is inconsistent: {index.ntotal} vectors, {len(passages)} passages, "
            f"manifest count {manifest.count}; rebuild the index"
        )
    if index.d != manifest.dimension:
        raise IndexMismatchError(
            f"index {manifest.version} has {index.d}-dim vectors but its manifest says {manifest.dimension}"
        )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _write_atomically(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)
