"""File-system and host command lines run on a node (mkdir, rm, rmdir, df, du, uname, git) and the
parser of `df` (pure). Every path comes after `--`, so a name starting with "-" is never an option."""


def mkdir_argv(*paths: str, parents: bool = True, mode: str = "") -> list[str]:
    return ["mkdir", *(["-p"] if parents else []), *(["-m", mode] if mode else []), "--", *paths]


def remove_argv(*paths: str, recursive: bool = False) -> list[str]:
    return ["rm", "-rf" if recursive else "-f", "--", *paths]


def rmdir_if_empty_argv(path: str) -> list[str]:
    return ["rmdir", "--ignore-fail-on-non-empty", "--", path]


def df_argv(path: str) -> list[str]:
    return ["df", "-P", "-k", path]


def parse_df_free_bytes(stdout: bytes) -> int:
    """Free bytes from `df -P -k`: the fourth column of its last line, in KiB."""
    return int(stdout.decode().splitlines()[-1].split()[3]) * 1024


def du_argv(path: str) -> list[str]:
    return ["du", "-s", "-k", path]


def uname_argv() -> list[str]:
    return ["uname", "-a"]


def run_in_directory_argv(directory: str, *argv: str) -> list[str]:
    """Run `argv` with `directory` as its working directory (the tenant's upgrade script)."""
    return ["sh", "-c", 'cd "$1" && shift && exec "$@"', "ccp-upgrade", directory, *argv]


def git_argv(checkout: str, *args: str) -> list[str]:
    # safe.directory: the checkout may belong to another account than the one CCP logs in as.
    return ["git", "-c", f"safe.directory={checkout}", "-C", checkout, *args]
