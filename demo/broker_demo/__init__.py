"""Stand-ins for trying and testing the broker: a local AWS, a demo SAML IdP and CI issuer.

A package of its own: the broker's wheel and container image never carry it."""
