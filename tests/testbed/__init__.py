"""The testbed: real sshd nodes on loopback addresses, a docker engine and a local registry (DESIGN.md §10)."""
