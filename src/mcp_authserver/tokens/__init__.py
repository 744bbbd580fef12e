"""Signing keys, the JWKS, and our own JWT access tokens."""
