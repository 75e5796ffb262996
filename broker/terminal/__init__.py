"""The command line's front door: `broker login` and the broker session tokens it gets."""
