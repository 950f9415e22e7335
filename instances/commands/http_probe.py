"""Probing health URLs from the node itself: the command line and the parser of its output (pure)."""

MARK = "\x1e"

# $1…: the URLs. All are probed at once (curl with URL globbing off and only http/https, or wget
# where there is no curl); then, per URL in order: a header `MARK <index> <exit code>` and its output.
# The response body is discarded: outputs are shown to viewers, and a URL may name a node-internal
# service (a body cut short would otherwise appear in curl's output); only the tool's error message is kept.
PROBE = r"""
dir=$(mktemp -d) || exit 2
trap 'rm -rf -- "$dir"' EXIT
i=0
for url do
    i=$((i + 1))
    (
        if command -v curl >/dev/null 2>&1; then
            curl --globoff --proto =http,https --proto-redir =http,https --fail --silent --show-error \
                --max-time 5 --output /dev/null "$url"
        else
            wget -q -O /dev/null -T 5 -- "$url"
        fi >"$dir/$i.out" 2>&1
        echo "$?" >"$dir/$i.rc"
    ) &
done
wait
i=0
for url do
    i=$((i + 1))
    printf '\036%s %s\n' "$i" "$(cat -- "$dir/$i.rc" 2>/dev/null || echo 255)"
    cat -- "$dir/$i.out" 2>/dev/null
    printf '\n'
done
"""


def is_probeable(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def probe_argv(urls: list[str]) -> list[str]:
    return ["sh", "-c", PROBE, "ccp-health", *urls]


def parse_probe(stdout: bytes, urls: list[str]) -> dict[str, tuple[bool, str]]:
    """url → (answered 2xx, its output); a URL the output does not mention failed."""
    results = {url: (False, "no answer from the probe") for url in urls}
    for chunk in stdout.decode(errors="replace").split(MARK)[1:]:
        header, _, output = chunk.partition("\n")
        index, _, code = header.partition(" ")
        if index.isdigit() and 0 < int(index) <= len(urls):
            results[urls[int(index) - 1]] = (code.strip() == "0", output.rstrip("\n"))
    return results
