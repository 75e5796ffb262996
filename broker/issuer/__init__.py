"""Issuer mode: the broker signs its own short SAML assertion for AWS at each credential request."""
