"""The web toolkit every front door shares: dependencies, readers, rendering, problems,
middleware, ops routes, and the interface sign-in methods plug into."""
