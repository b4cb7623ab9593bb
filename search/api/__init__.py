"""Search's JSON API, by domain: search itself (`search`) and answers (`answers`); the
routes are in search.api_urls."""
