"""The upgrade modes (DESIGN.md §7). Each module builds a list of steps and rollback steps for the runner."""
