"""The few fixed shell scripts the drivers run on a node.

Each is a constant, reviewed here once, and run as `sh -c SCRIPT NAME ARG…`: values only ever reach
them as positional parameters ("$1", "$@"), never by being pasted into the script text.
"""

# $1: directory the paths are relative to; $2…: files or directories (missing ones are skipped).
# Prints `<sha256>  <path>\0` per regular file. -z: NUL-terminated and no escaping of odd names.
# -H: a protected path that is itself a symlink (to a directory) is followed; links inside are not.
CHECKSUMS = r"""
cd -- "$1" || exit 2
shift
for p do
    shift
    if [ -e "$p" ] || [ -L "$p" ]; then set -- "$@" "$p"; fi
done
[ "$#" -gt 0 ] || exit 0
exec find -H "$@" -type f -exec sha256sum -z -- {} +
"""

# $1: the runner script below; $2: the job's directory (created here); $3: working directory or "";
# $4…: the command. Returns at once; the runner lives on in a session of its own (setsid), immune
# to the SSH connection closing or the worker that started it restarting (nohup, no shared pipes).
START_DETACHED = r"""
runner=$1 job=$2 cwd=$3
shift 3
umask 077
mkdir -p -- "$job" || exit 2
: >"$job/log" || exit 2
setsid nohup sh -c "$runner" ccp-job "$job" "$cwd" "$@" </dev/null >/dev/null 2>&1 &
"""

# Runs the command, appends its output to `log`, then records the exit code atomically in `rc`.
DETACHED_RUNNER = r"""
job=$1 cwd=$2
shift 2
echo "$$" >"$job/pid.tmp" && mv -f -- "$job/pid.tmp" "$job/pid"
if [ -n "$cwd" ] && ! cd -- "$cwd" 2>>"$job/log"; then
    echo 126 >"$job/rc.tmp" && mv -f -- "$job/rc.tmp" "$job/rc"
    exit 126
fi
"$@" >>"$job/log" 2>&1 </dev/null
echo "$?" >"$job/rc.tmp" && mv -f -- "$job/rc.tmp" "$job/rc"
"""

# $1: the job's directory; $2: log offset in bytes; $3: at most this many log bytes while running.
# First line: `running`, `exited <code>` or `lost` (the runner died without recording a code);
# then the log from the offset. The state is read before the log, so after `exited` the log is whole.
POLL_DETACHED = r"""
job=$1 offset=$2 limit=$3
[ -d "$job" ] || { echo "no job directory $job" >&2; exit 3; }
alive() {
    pid=$(cat -- "$job/pid" 2>/dev/null) || return 0  # not started yet
    kill -0 "$pid" 2>/dev/null && tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$job"
}
if [ -f "$job/rc" ]; then
    state="exited $(cat -- "$job/rc")"
elif alive; then
    state=running
elif [ -f "$job/rc" ]; then
    state="exited $(cat -- "$job/rc")"
else
    state=lost
fi
printf '%s\n' "$state"
if [ "$state" = running ]; then
    tail -c "+$((offset + 1))" -- "$job/log" | head -c "$limit"
else
    tail -c "+$((offset + 1))" -- "$job/log"
fi
"""

# $1: the job's directory; $2: seconds between TERM and KILL. Ends the job's whole process group (the
# runner is its session leader, setsid), then records exit code 143 when the runner could not.
# Prints what it did. A job that has ended (or never started here) is left as it is.
STOP_DETACHED = r"""
job=$1 grace=$2
[ -d "$job" ] || { echo "no job directory $job" >&2; exit 3; }
[ -f "$job/rc" ] && { echo "the job had already ended (exit code $(cat -- "$job/rc"))"; exit 0; }
pid=$(cat -- "$job/pid" 2>/dev/null) || { echo "the job had not started"; exit 0; }
if ! tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$job"; then
    echo "the job was no longer running"; exit 0
fi
kill -TERM -"$pid" 2>/dev/null
i=0
while kill -0 -"$pid" 2>/dev/null && [ "$i" -lt "$grace" ]; do sleep 1; i=$((i + 1)); done
kill -KILL -"$pid" 2>/dev/null
[ -f "$job/rc" ] || { echo 143 >"$job/rc.tmp" && mv -f -- "$job/rc.tmp" "$job/rc"; }
echo "stopped the job's processes on the node"
"""
