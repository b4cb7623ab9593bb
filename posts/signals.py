"""What posts announces: `posts_changed`, sent inside the transaction of every write
(imports and bulk upserts, edits, hide and unhide, delete and restore).

posts knows nothing of who listens. An app that keeps something derived from posts (the
search index) connects a receiver in its `AppConfig.ready()`; the receiver runs inside
the same transaction, so what it writes commits, or rolls back, with the change.

    posts_changed.connect(receiver, dispatch_uid="search.index")
    def receiver(sender, *, post_ids: list[int], **kwargs) -> None: ...
"""

from __future__ import annotations

from collections.abc import Iterable

from django.dispatch import Signal

from posts.models import Post

posts_changed = Signal()  # post_ids: the primary keys written, in no particular order


def posts_changed_send(*, post_ids: Iterable[int]) -> None:
    """Announce that these posts changed (call it inside the write's transaction)."""
    posts_changed.send(sender=Post, post_ids=list(post_ids))
