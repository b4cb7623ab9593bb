"""The answer chain (LCEL): retrieve → the read posts' best sentences → a prompt of
numbered, fenced posts → the chat model, streamed → every sentence checked against the
post it cites → the answer composed of supported sentences only.

    for event in answer_stream(question="¿Qué pasó con la vacuna?"):
        event.kind      # "retrieved", "token", "done"

How an answer is composed (PLAZA_ANSWER_STYLE; see resolve_style):
- ``extractive``: the read posts' own sentences that best answer the question
  (ml.extract), quoted and cited; the model is not called.
- ``generative``: the model's sentences that a read post supports (ml.support); when
  none does, or the deadline passes first, the answer is completed extractively.
- ``mixed``: the extractive answer first (so the page shows it at once), then the
  model's supported sentences that add to it.
- ``auto`` (default): generative for a model of STRONG_MODEL_PARAMETERS or more, mixed
  for a smaller one (the bundled 135M model's own text held the gold answer in 32% (en)
  and 16% (es) of XQuAD answers; the posts' sentences in far more).

A sentence no read post supports is never shown: it is kept on the result (`rejected`,
with its reason) for the log. A whole answer has a deadline (PLAZA_ANSWER_DEADLINE_S):
past it, generation stops and the answer is completed extractively (`cut_short`).
Answers are at most ANSWER_MAX_CHARS long: what a person reads above the results.

Posts are untrusted quotes: the prompt fences each between markers the model is told to
treat as data, and says instructions inside them are to be ignored. Whatever the model
writes is only text: citations are numbers checked against the read posts, nothing it
writes is executed, and the page escapes it. When nothing relevant is retrieved the
answer says so without calling the model.

The plain-Python parts (the budget of posts read, fencing, composing within
ANSWER_MAX_CHARS) are ml.answer_compose; this module wires them to retrieval, the chat
model and the settings.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

from ml.answer_compose import (
    ANSWER_MAX_CHARS,
    EXAMPLES,
    NOTHING_FOUND_IN,
    QUESTION_LABEL,
    SYSTEM,
    Composer,
    Source,
    answer_language,
    encoder_native,
    fence,
    question_language,
    relevant,
    within_budget,
)
from ml.citations import CitationTracker, split_sentences
from ml.extract import best_sentences
from ml.generation import GeneratorConfig, get_generator
from ml.langchain import PlazaChatModel
from ml.support import CheckedSentence
from search import indexes
from search.query import ParsedQuery, parse_query
from search.selectors import SearchHit, search_posts

ANSWER_SOURCES = 3  # at most this many posts in front of the model
STRONG_MODEL_PARAMETERS = 1_000_000_000  # auto: a model this large writes (generative)
MODEL_MAX_TOKENS = 120  # the model's budget: about twice ANSWER_MAX_CHARS
STYLES = ("auto", "extractive", "generative", "mixed")


def prompt_for(language: str) -> ChatPromptTemplate:
    """The chat prompt for `language`, a key of EXAMPLES (see answer_language)."""
    example_question, example_answer = EXAMPLES[language]
    return ChatPromptTemplate.from_messages(
        [
            ("system", SYSTEM),
            ("human", example_question),
            ("ai", example_answer),
            ("human", "Posts:\n{posts}\n\n" + QUESTION_LABEL[language] + ": {question}"),
        ]
    )


@dataclass
class AnswerEvent:
    kind: str  # "retrieved", "token", "done"
    text: str = ""
    hits: list[SearchHit] = field(default_factory=list)
    result: AnswerResult | None = None


@dataclass
class AnswerResult:
    text: str
    hits: list[SearchHit]  # the posts retrieved, numbered from 1 (site search)
    citations: list[int]  # numbers the shown sentences rest on, in order of first use
    written_citations: list[int]  # the valid numbers the model wrote
    sentences: list[CheckedSentence]  # what is shown, each supported by its post
    model: str
    timings: dict[str, float]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    sources: list[Source] = field(default_factory=list)  # the same posts, as the model saw them
    model_text: str = ""  # everything the model wrote ("" when it was not called)
    rejected: list[CheckedSentence] = field(default_factory=list)  # not shown, with reasons
    style: str = "extractive"  # how it was composed: extractive, generative or mixed
    cut_short: bool = False  # the deadline stopped the model; completed extractively

    @property
    def quoted(self) -> bool:
        """Every shown sentence is a post's own words."""
        return bool(self.sentences) and all(s.origin == "post" for s in self.sentences)

    def evidence(self, n: int) -> list[str]:
        """The sentences of source n that the answer's sentences rest on, in order."""
        found = []
        for sentence in self.sentences:
            if n in sentence.sources and sentence.evidence not in found:
                found.append(sentence.evidence)
        return found


def chat_model(**overrides) -> PlazaChatModel:
    config = GeneratorConfig(
        model=settings.PLAZA_ANSWER_MODEL,
        device=settings.PLAZA_DEVICE,
        threads=settings.PLAZA_GENERATION_THREADS,
        cache_dir=str(settings.PLAZA_MODEL_CACHE),
    )
    return PlazaChatModel(generator=config, **({"max_tokens": MODEL_MAX_TOKENS} | overrides))


def resolve_style(style: str, chat: PlazaChatModel) -> str:
    """extractive, generative or mixed: auto asks the model's size (see the module doc)."""
    if style != "auto":
        return style
    parameters = get_generator(chat.generator).parameters
    return "generative" if parameters >= STRONG_MODEL_PARAMETERS else "mixed"


def tokens(pieces: Iterator[str]) -> Iterator[AnswerEvent]:
    """The composer's pieces of text as the stream's token events."""
    for piece in pieces:
        yield AnswerEvent("token", text=piece)


def source_of(hit: SearchHit) -> Source:
    post = hit.post
    return Source(id=post.external_id, author=post.author.handle, text=post.text, lang=post.lang)


def answer_stream(
    *,
    question: str | ParsedQuery,
    sources: int = ANSWER_SOURCES,
    chat=None,
    style: str | None = None,
    deadline_s: float | None = None,
) -> Iterator[AnswerEvent]:
    """Events of one answer: the posts retrieved, each piece of text, then the result
    (`style` and `deadline_s`: see answer_from_sources)."""
    started = time.perf_counter()
    parsed = parse_query(question) if isinstance(question, str) else question
    found = search_posts(query=parsed, k=sources).hits
    encode, languages = None, None
    if found:
        model = indexes.live_generation().embed_model
        encode = indexes.encoder_for(model).encode
        languages = indexes.encoder_languages(model)
    native = encoder_native(parsed.text, languages)
    hits = [
        h for h in found if relevant(h.found_by, h.method_scores.get("dense", 0.0), native=native)
    ]
    # The posts the model reads: those the budget holds, a prefix of the ranking.
    read = within_budget(parsed.text, [source_of(hit) for hit in hits], encode)
    hits = hits[: len(read)]
    retrieval_ms = (time.perf_counter() - started) * 1000
    yield AnswerEvent("retrieved", hits=hits)
    for event in answer_from_sources(
        question=parsed.text,
        sources=read,
        encode=encode,
        encoder_languages=languages,
        chat=chat,
        started=started,
        retrieval_ms=retrieval_ms,
        style=style,
        deadline_s=deadline_s,
    ):
        if event.result is not None:
            event.result.hits = hits
        yield event


def answer_from_sources(
    *,
    question: str,
    sources: list[Source],
    encode,
    encoder_languages: tuple[str, ...] | None = None,
    chat=None,
    started: float | None = None,
    retrieval_ms: float = 0.0,
    style: str | None = None,
    deadline_s: float | None = None,
) -> Iterator[AnswerEvent]:
    """The answer over given sources: text events as it is composed, then the result.
    `encode` is the retrieval encoder; `style` and `deadline_s` default to the settings
    (PLAZA_ANSWER_STYLE, PLAZA_ANSWER_DEADLINE_S); see the module docstring."""
    started = time.perf_counter() if started is None else started
    deadline = started + (settings.PLAZA_ANSWER_DEADLINE_S if deadline_s is None else deadline_s)
    timings = {"retrieval_ms": retrieval_ms}
    chat = chat or chat_model()
    language = answer_language(question)
    if not sources:
        text = NOTHING_FOUND_IN[language]
        timings |= {"first_token_ms": retrieval_ms, "total_ms": retrieval_ms}
        yield AnswerEvent("token", text=text)
        result = AnswerResult(text, [], [], [], [], chat.generator.model, timings)
        yield AnswerEvent("done", result=result)
        return
    sources = within_budget(question, sources, encode)
    texts = [source.text for source in sources]
    if question_language(question) is None:  # "vacuna": the language of the posts read
        langs = [source.lang for source in sources if source.lang in EXAMPLES]
        language = Counter(langs).most_common(1)[0][0] if langs else language  # ties: rank
    # Cosines only where the encoder knows the language (see encoder_native).
    native_encode = encode if encoder_native(question, encoder_languages) else None
    style = resolve_style(style or settings.PLAZA_ANSWER_STYLE, chat)
    answer = Composer(language, timings, started)

    def extractive() -> Iterator[AnswerEvent]:
        picks = best_sentences(
            question,
            texts,
            encode=native_encode,
            limit_chars=ANSWER_MAX_CHARS - answer.length,
            languages=[source.lang for source in sources],
            prefer=question_language(question),
        )
        for pick in picks:
            sentence = CheckedSentence(
                text=pick.text, claim=pick.text, sources=[pick.n], origin="post",
                evidence=pick.sentence,
            )  # fmt: skip
            yield from tokens(answer.add(sentence))

    if style in ("extractive", "mixed"):
        yield from extractive()
    model_text, usage, tracker, cut_short = "", {}, CitationTracker(len(sources)), False
    pieces = 0
    if style != "extractive" and time.perf_counter() > deadline:
        cut_short = True  # retrieval alone took the time: the model is not started
    elif style != "extractive" and not answer.full:
        inputs = RunnableLambda(lambda _: {"posts": fence(sources), "question": question})
        stream = (inputs | prompt_for(language) | chat).stream(None)
        pending = ""
        try:
            for chunk in stream:
                if chunk.usage_metadata:
                    usage = dict(chunk.usage_metadata)
                pieces += bool(chunk.content)
                piece = tracker.feed(chunk.content)
                model_text += piece
                pending += piece
                *done, pending = split_sentences(pending + "\x00") or [""]
                pending = pending.removesuffix("\x00")
                for part in done:
                    yield from tokens(answer.offer(part, texts, native_encode))
                if time.perf_counter() > deadline:
                    cut_short = True
                    break
                if answer.full:
                    break
        finally:
            stream.close()  # stops decoding and frees the model for the next answer
        if not cut_short:
            tail = tracker.flush()
            model_text += tail
            yield from tokens(answer.offer(pending + tail, texts, native_encode))
    if style == "generative" and (cut_short or not answer.from_model):
        yield from extractive()
    timings["total_ms"] = (time.perf_counter() - started) * 1000
    timings.setdefault("first_token_ms", timings["total_ms"])
    result = AnswerResult(
        text=answer.text,
        hits=[],
        citations=list(dict.fromkeys(n for s in answer.sentences for n in s.sources)),
        written_citations=list(tracker.cited),
        sentences=answer.sentences,
        model=chat.generator.model,
        timings=timings,
        prompt_tokens=usage.get("input_tokens", 0),
        completion_tokens=usage.get("output_tokens", pieces),  # no usage when stopped early
        sources=sources,
        model_text=model_text.strip(),
        rejected=answer.rejected,
        style=style,
        cut_short=cut_short,
    )
    yield AnswerEvent("done", result=result)
