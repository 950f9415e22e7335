"""The command lines CCP runs on nodes, as data: pure functions that build argv lists, and pure
parsers of what those commands print. Nothing here runs anything or touches the database, so each
builder and parser is tested as data (tests/instances/test_commands.py), like Kamal's commands/.

- `docker`      the engine: versions, image IDs, tag, pull, save/load, the project's containers;
- `compose`     `docker compose` for an instance's project: ps, config, version (callers add `up` etc.);
- `tar`         many files read in one stream, a backup's .tar.gz, a restore's unpacking;
- `files`       mkdir, rm, rmdir, df, du, uname, git, and running a script in a directory;
- `backup`      the scripts a backup and a restore run (inventory, swap, undo) and their command lines;
- `http_probe`  probing health URLs from the node.

What runs them: the node queries (instances/node_queries.py), the upgrade steps (upgrades/modes/),
backups and restores (instances/backups/), health (instances/health.py). Two kinds of command stay
with their own code, pure and apart from their running just the same: the driver's protocol
(checksums with sha256sum, detached jobs: instances/drivers/scripts.py) and the scripts only upgrades
run (the precheck and the protected-path snapshot, upgrades/modes/precheck.py and protection.py).
"""
