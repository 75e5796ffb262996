"""AWS federation broker: SAML 2.0 and OIDC in, temporary AWS credentials and console sign-in out."""
