from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    verbose_name = "Search"

    def ready(self) -> None:
        from ops.registry import index_register, jobs_register

        # Read by the ops page, /metrics and /healthz; imported at their first call.
        index_register("search.selectors.index_figures_for_ops")
        jobs_register(kind="answers", label="Answers", report="search.selectors.answer_jobs_report")
