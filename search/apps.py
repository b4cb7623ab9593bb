from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    verbose_name = "Search"

    def ready(self) -> None:
        from ops.registry import index_register, jobs_register
        from posts.panels import post_panel_register
        from posts.signals import posts_changed
        from search.receivers import posts_changed_index

        # Read by the ops page, /metrics and /healthz; imported at their first call.
        index_register("search.selectors.index_figures_for_ops")
        jobs_register(kind="answers", label="Answers", report="search.selectors.answer_jobs_report")
        # Every change to a post reaches the index: posts announces it, search queues it.
        posts_changed.connect(posts_changed_index, dispatch_uid="search.index")
        # The post page's "Similar posts", read from the live index.
        post_panel_register(
            name="similar-posts",
            template="search/_similar_posts.html",
            reader="search.selectors.similar_posts_panel",
        )
