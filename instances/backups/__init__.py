"""Backups (DESIGN.md §8)."""
