"""The organisation's identity provider, seen as an OAuth client sees it."""
