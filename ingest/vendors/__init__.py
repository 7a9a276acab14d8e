"""Vendor clients: they speak HTTP to the vendors and return raw payloads only."""
