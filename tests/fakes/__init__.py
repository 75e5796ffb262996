"""Fakes and shared helpers for the tests: servers, IdPs, worlds and case tables."""
