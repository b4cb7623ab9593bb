from django.db import models


class Author(models.Model):
    """A platform account that writes posts."""

    handle = models.CharField(max_length=64, unique=True, help_text="Without the @.")
    display_name = models.CharField(max_length=128, blank=True)
    bio = models.TextField(blank=True)
    followers = models.PositiveIntegerField(default=0)
    verified = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["handle"]

    def __str__(self) -> str:
        return f"@{self.handle}"


class PostQuerySet(models.QuerySet):
    def visible(self) -> "PostQuerySet":
        """Posts anyone may see: neither hidden nor deleted."""
        return self.filter(is_hidden=False, deleted_at__isnull=True)


class Post(models.Model):
    """A public post, identified by its id at its source platform."""

    source = models.SlugField(max_length=32, default="plaza", help_text="Where the post came from.")
    external_id = models.CharField(max_length=64, help_text="The post's id at its source.")
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="posts")
    text = models.TextField()
    lang = models.CharField(max_length=16, blank=True, help_text="BCP 47 code, e.g. es, en.")
    created_at = models.DateTimeField(help_text="When the author posted it.")
    likes = models.PositiveIntegerField(default=0)
    reposts = models.PositiveIntegerField(default=0)
    replies = models.PositiveIntegerField(default=0)
    # Moderation state: hidden posts can come back; deleted ones are gone for good
    # (the row stays so a later import of the same id cannot resurrect it).
    is_hidden = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # sha256 of lang + text: what the index embedded, for the reconcile diff.
    content_hash = models.CharField(max_length=64, editable=False)
    ingested_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PostQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="post_source_external_id"
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="post_created_at"),
            models.Index(fields=["author", "created_at"], name="post_author_created_at"),
            models.Index(fields=["lang", "created_at"], name="post_lang_created_at"),
            # Search reads the posts changed since its last BM25 build.
            models.Index(fields=["updated_at"], name="post_updated_at"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"

    @property
    def is_visible(self) -> bool:
        return not self.is_hidden and self.deleted_at is None
