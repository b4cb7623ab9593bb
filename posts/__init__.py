"""Authors and posts, and how they get in: the import command and the JSON API."""
