"""The command line's side of `broker login`: sign-in, the kept session, and what it is for."""
