"""SAML 2.0 service provider: screen, verify, SP settings and metadata, and the ACS routes."""
