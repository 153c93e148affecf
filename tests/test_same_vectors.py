"""The reference is the class, not the folder (issue 21): each face gives its library's vectors on every shared folder.

``StaticSentenceTransformer`` = ``sentence_transformers.SentenceTransformer`` 6.x (``[UNK]`` kept, no 512 cut);
``StaticModel`` = ``model2vec.StaticModel`` 0.10; ``family="model2vec"`` = model2vec's rules on the ST face.
The texts are the issue's: emoji and CJK (unknown tokens), and a text of more than 1,200 tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from staticst import Normalize, StaticEmbedding, StaticModel, StaticSentenceTransformer

LONG = " ".join(f"word{i} the quick brown fox jumps over the lazy dog, {i} times" for i in range(150))
TEXTS = ["I love 🍕 and 寿司 ✨ so much", LONG, "plain english text", "東京タワーの近くで寿司を食べました", "qwzx ✨✨ 🍕🍕"]
#: The shared static folders sentence-transformers 6.x loads (wordllama / tokenlearn have no modules.json: ST refuses them).
ST_FOLDERS = ["potion-base-2M", "potion-base-8M", "potion-base-2M-sentence-transformers"]
ALL_FOLDERS = [*ST_FOLDERS, "wordllama-l2-supercat-256", "tokenlearn-10k-int8"]


def test_the_long_text_is_longer_than_512_tokens(shared_model: Callable[[str], Path]) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(shared_model("potion-base-8M") / "tokenizer.json"))
    tokenizer.no_truncation()
    assert len(tokenizer.encode(LONG).ids) > 1200


@pytest.mark.parametrize("name", ST_FOLDERS)
def test_static_sentence_transformer_gives_sentence_transformers_vectors(name: str, shared_model: Callable[[str], Path]) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(shared_model(name)), device="cpu")
    ours = StaticSentenceTransformer(shared_model(name))
    assert ours.family == "sentence-transformers" and ours.max_seq_length == reference.max_seq_length
    expected = reference.encode(TEXTS)
    assert np.abs(ours.encode(TEXTS) - expected).max() <= 1e-6
    # the rules differ on these texts: model2vec's vectors are not sentence-transformers'
    m2v_rules = StaticSentenceTransformer(shared_model(name), family="model2vec")
    assert np.abs(m2v_rules.encode(TEXTS) - expected).max() > 1e-3


@pytest.mark.parametrize("name", ALL_FOLDERS)
def test_static_model_and_the_model2vec_family_give_model2vec_vectors(name: str, shared_model: Callable[[str], Path]) -> None:
    from model2vec import StaticModel as M2V

    expected = M2V.from_pretrained(shared_model(name)).encode(TEXTS).astype(np.float32)
    assert np.abs(StaticModel.from_pretrained(shared_model(name)).encode(TEXTS).astype(np.float32) - expected).max() <= 1e-6
    explicit = StaticSentenceTransformer(shared_model(name), family="model2vec")
    assert explicit.family == "model2vec" and explicit.max_seq_length == 512
    assert np.abs(explicit.encode(TEXTS) - expected).max() <= 1e-6


def test_unknown_family_is_refused_with_the_known_names(shared_model: Callable[[str], Path]) -> None:
    with pytest.raises(ValueError, match=r"family='m2v'.*model2vec"):
        StaticSentenceTransformer(shared_model("potion-base-2M"), family="m2v")


def test_module_api_gives_the_vectors_of_sentence_transformers_modules(shared_model: Callable[[str], Path]) -> None:
    """``SentenceTransformer(modules=[StaticEmbedding.from_model2vec(...), Normalize()])`` with only the import changed."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize as STNormalize
    from sentence_transformers.models import StaticEmbedding as STStaticEmbedding

    path = str(shared_model("potion-base-8M"))
    reference = SentenceTransformer(modules=[STStaticEmbedding.from_model2vec(path), STNormalize()], device="cpu")
    ours = StaticSentenceTransformer(modules=[StaticEmbedding.from_model2vec(path), Normalize()])
    assert np.abs(ours.encode(TEXTS) - reference.encode(TEXTS)).max() <= 1e-6
    # the tokenizer + weights constructor, without Normalize
    module = StaticEmbedding.from_model2vec(path)
    built = StaticEmbedding(module.tokenizer, embedding_weights=np.asarray(module.weight))
    st_module = STStaticEmbedding(module.tokenizer, embedding_weights=np.asarray(module.weight))
    expected = SentenceTransformer(modules=[st_module], device="cpu").encode(TEXTS)
    assert np.abs(StaticSentenceTransformer(modules=[built]).encode(TEXTS) - expected).max() <= 1e-6


def test_encode_query_forwards_inputs_and_every_option_by_keyword(shared_model: Callable[[str], Path]) -> None:
    """As sentence-transformers does: an ``encode`` override sees ``inputs=`` and the same keywords."""
    from sentence_transformers import SentenceTransformer

    seen: dict[str, set[str]] = {}

    def recorder(base: type) -> type:
        class Recorder(base):  # type: ignore[misc,valid-type]
            def encode(self, *args: object, **kwargs: object) -> object:
                seen.setdefault(base.__name__, set()).update(kwargs)
                assert not args, args
                return super().encode(*args, **kwargs)

        return Recorder

    path = str(shared_model("potion-base-2M"))
    recorder(SentenceTransformer)(path, device="cpu").encode_query("hello")
    recorder(StaticSentenceTransformer)(path).encode_query("hello")
    recorder(SentenceTransformer)(path, device="cpu").encode_document("hello")
    recorder(StaticSentenceTransformer)(path).encode_document("hello")
    reference = seen["SentenceTransformer"]
    assert "inputs" in reference and "task" in reference
    assert reference <= seen["StaticSentenceTransformer"], reference - seen["StaticSentenceTransformer"]
