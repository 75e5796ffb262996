"""People in a browser: sessions, the role picker, console sign-in and command-line pages."""
