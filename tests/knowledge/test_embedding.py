from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from knowledge.embedding import BUNDLED_MODEL_NAME, SentenceTransformerEmbedder, bundled_model_path


def test_the_bundled_model_ships_with_the_package():
    assert (bundled_model_path() / "modules.json").is_file()


def test_a_missing_model_folder_is_reported(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="embedding model folder not found"):
        SentenceTransformerEmbedder(tmp_path / "no-such-model")


@pytest.mark.integration
def test_the_bundled_model_loads_offline(real_embedder):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert real_embedder.model_name == BUNDLED_MODEL_NAME
    assert real_embedder.dimension == 384


@pytest.mark.integration
def test_vectors_are_normalised_float32_rows(real_embedder):
    vectors = real_embedder.encode(["Can I wear makeup?", "When can I exercise again?", "x"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.integration
def test_similar_questions_are_closer_than_unrelated_ones(real_embedder):
    makeup, foundation, parking = real_embedder.encode(
        [
            "When can I wear makeup again?",
            "Is it ok to put foundation on tomorrow?",
            "Where can I park my car?",
        ]
    )
    assert makeup @ foundation > makeup @ parking


@pytest.mark.integration
def test_no_texts_give_an_empty_matrix(real_embedder):
    assert real_embedder.encode([]).shape == (0, 384)
