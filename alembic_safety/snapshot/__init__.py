"""Snapshots: what to copy (policy), how (engines), where (store), described by a manifest."""
