"""What search does when posts announce a change (connected in SearchConfig.ready())."""

from __future__ import annotations

from search.services.index_sync import index_request


def posts_changed_index(sender, *, post_ids: list[int], **kwargs) -> None:
    """posts.signals.posts_changed: queue the posts for the index, in the write's
    transaction (flushed once it commits)."""
    index_request(post_ids=post_ids)
