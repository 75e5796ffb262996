"""What the broker knows about AWS: ARNs, partitions, and the STS client with its transport."""
