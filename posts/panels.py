"""Panels on a post's page that the apps above posts provide.

posts imports none of them: an app registers its panel in its AppConfig.ready(), and the
post page shows every registered panel that has something to show, in the order they
were registered:

    post_panel_register(
        name="similar-posts",
        template="search/_similar_posts.html",          # rendered with `panel`: the context
        reader="search.selectors.similar_posts_panel",  # (*, post) -> dict, or None
    )

    post_panels(post=post)        # [PostPanelShown(template, context)] for the page

A reader is a callable or its dotted path (imported at the first call). A reader that
fails is logged and its panel left out: a side panel never breaks the post page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.module_loading import import_string

from posts.models import Post

logger = logging.getLogger(__name__)

PanelReader = Callable[..., dict | None]  # (*, post: Post) -> the template's context, or None


@dataclass(frozen=True)
class PostPanel:
    name: str  # unique: registering a name again replaces its panel
    template: str  # rendered with `panel`, the reader's context, and the page's `post`
    reader: PanelReader | str


@dataclass(frozen=True)
class PostPanelShown:
    template: str
    context: dict


_panels: dict[str, PostPanel] = {}


def post_panel_register(*, name: str, template: str, reader: PanelReader | str) -> None:
    """Show a panel on every post page (from an AppConfig.ready())."""
    _panels[name] = PostPanel(name=name, template=template, reader=reader)


def post_panels(*, post: Post) -> list[PostPanelShown]:
    """The panels with something to show for this post, in the order registered."""
    shown = []
    for panel in _panels.values():
        reader = import_string(panel.reader) if isinstance(panel.reader, str) else panel.reader
        try:
            context = reader(post=post)
        except Exception:  # noqa: BLE001 - a side panel; the post itself still shows
            logger.exception("the %s panel failed for post %s", panel.name, post.pk)
            continue
        if context is not None:
            shown.append(PostPanelShown(template=panel.template, context=context))
    return shown
