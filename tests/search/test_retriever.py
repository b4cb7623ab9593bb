"""PostsRetriever: langchain-tests' standard retriever suite over the site's search, on
the configured search backend (run under each, README "Tests"), and what it returns."""

from __future__ import annotations

import pytest
from django.urls import reverse
from langchain_tests.integration_tests import RetrieversIntegrationTests

from search.retriever import PostsRetriever

# Committed data: the async methods run the retriever on another thread, with its own
# database connection.
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class TestPostsRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _posts(self, indexed_posts):
        type(self).posts = indexed_posts

    @property
    def retriever_constructor(self):
        return PostsRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "bread fermentation"


def test_operators_filter_and_documents_name_their_post(indexed_posts):
    docs = PostsRetriever(k=5).invoke("vacuna lang:es from:ana")
    assert docs and {d.metadata["author"] for d in docs} == {"ana"}
    assert {d.metadata["lang"] for d in docs} == {"es"}
    first = indexed_posts["2"]
    assert docs[0].id == str(first.pk) and docs[0].page_content == first.text
    assert docs[0].metadata["url"] == reverse("posts:detail", args=[first.pk])
    assert PostsRetriever().invoke("bread", k=1)[0].metadata["found_by"]
