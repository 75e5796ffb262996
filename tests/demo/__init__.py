"""Tests for the demo/test-only AWS stand-in."""
