"""The fixed shell scripts backups and restores run on a node, reviewed here once, with the command
lines that run them and the parser of the inventory (pure).

Run as `sh -c SCRIPT NAME ARG…`: values reach them only as positional parameters, never pasted into
the script text (see instances/drivers/scripts.py for the same rule).
"""

# $1: install directory. Prints `<type> <name>\0` for each top-level entry: f file, d directory,
# l symlink (checked first, so a link to a directory is not followed).
INVENTORY = r"""
cd -- "$1" || exit 2
for f in * .[!.]* ..?*; do
    if [ -L "$f" ]; then t=l
    elif [ -d "$f" ]; then t=d
    elif [ -f "$f" ]; then t=f
    else continue
    fi
    printf '%s %s\0' "$t" "$f"
done
"""

# Puts back what a swap moved: an entry with an old version gets it back; an entry that had none
# is removed unless it never left the staging area. Returns non-zero if anything could not be put back.
_UNDO = r"""
undo() {
    undone=0
    for name do
        if [ -e "$staging/old/$name" ] || [ -L "$staging/old/$name" ]; then
            { rm -rf -- "$name" && mv -- "$staging/old/$name" "$name"; } || undone=1
        elif ! { [ -e "$staging/new/$name" ] || [ -L "$staging/new/$name" ]; }; then
            rm -rf -- "$name" || undone=1
        fi
    done
    return "$undone"
}
"""

# $1: install directory; $2: staging directory holding new/<name>; $3…: top-level names. Each entry
# is renamed aside into old/ and the new one renamed in (one rename each, same file system).
# Exit 2: nothing was moved; 3: a rename failed and everything was put back; 4: it could not be put back.
SWAP = (
    r"""
dir=$1 staging=$2
shift 2
cd -- "$dir" || exit 2
mkdir -p -- "$staging/old" || exit 2
"""
    + _UNDO
    + r"""
for name do
    if [ -e "$name" ] || [ -L "$name" ]; then
        mv -- "$name" "$staging/old/$name" || { undo "$@" && exit 3; exit 4; }
    fi
    mv -- "$staging/new/$name" "$name" || { undo "$@" && exit 3; exit 4; }
done
"""
)
SWAP_NOTHING_MOVED, SWAP_PUT_BACK = 2, 3

# Same arguments as SWAP: undo a completed swap (the restored files failed their check on the node).
UNDO_SWAP = (
    r"""
dir=$1 staging=$2
shift 2
cd -- "$dir" || exit 2
"""
    + _UNDO
    + r"""
undo "$@"
"""
)


def inventory_argv(install_dir: str) -> list[str]:
    return ["sh", "-c", INVENTORY, "ccp-inventory", install_dir]


def parse_inventory(stdout: bytes) -> dict[str, str]:
    """{top-level name: "f", "d" or "l"} from INVENTORY's `<type> <name>\\0` records."""
    entries = {}
    for record in stdout.split(b"\0"):
        if record:
            kind, _, name = record.decode("utf-8", errors="surrogateescape").partition(" ")
            entries[name] = kind
    return entries


def swap_argv(install_dir: str, staging: str, names: list[str]) -> list[str]:
    return ["sh", "-c", SWAP, "ccp-restore-swap", install_dir, staging, *names]


def undo_swap_argv(install_dir: str, staging: str, names: list[str]) -> list[str]:
    return ["sh", "-c", UNDO_SWAP, "ccp-restore-undo", install_dir, staging, *names]
