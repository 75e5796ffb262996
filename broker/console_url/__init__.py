"""The AWS console sign-in through the federation endpoint (getSigninToken, Action=login)."""
