"""A LangChain retriever over the site's search, on whichever search backend is configured.

    retriever = PostsRetriever(k=5)
    retriever.invoke('vacunas "tercera dosis" lang:es')     # Documents, best first

The query takes the search box's X operators (from:, lang:, since:, until:, "phrases",
-exclusions); ranking is the site's (hybrid dense + BM25, fused by ml.hybrid), and only
visible posts come back. Each Document's id is the post's primary key; its metadata
names the author, language, time, public page, fused score and the methods that found it.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from search.selectors import MAX_K, search_posts


class PostsRetriever(BaseRetriever):
    """See the module docstring. `k` per retriever or per call; `recency` favours new posts."""

    k: int = 4
    recency: bool = False

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = max(1, min(int(kwargs.get("k", self.k)), MAX_K))
        results = search_posts(query=query, k=k, recency=bool(kwargs.get("recency", self.recency)))
        return [
            Document(
                id=str(hit.post.pk),
                page_content=hit.post.text,
                metadata={
                    "external_id": hit.post.external_id,
                    "author": hit.post.author.handle,
                    "lang": hit.post.lang,
                    "created_at": hit.post.created_at.isoformat(),
                    "url": reverse("posts:detail", args=[hit.post.pk]),
                    "score": hit.score,
                    "found_by": hit.found_by,
                },
            )
            for hit in results.hits
        ]
