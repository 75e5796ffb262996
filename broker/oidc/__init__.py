"""OpenID Connect: the JWT verifier and JWKS cache, and the programs' credential routes."""
