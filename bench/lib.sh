# Shared by the bench scripts (sourced, not run): a scratch directory `$work` removed on exit,
# background processes in `pids` stopped on exit (TERM, then KILL after 10 s), and loopback
# port helpers.

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits (at most 10 s) until 127.0.0.1:$1 accepts connections.
wait_port() {
    for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "port $1 never opened" >&2; return 1
}
# Stops process $1 (TERM, then KILL after ${2:-10} s) and forgets it (it leaves `pids`).
stop_pid() {
    local p=$1 secs=${2:-10} q keep=()
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq $((secs * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    pids=("${keep[@]}")
}
# Runs "$@" under `timeout` (TERM after $1 s, KILL 10 s later) as a background job and waits for
# it, so that a trapped signal (Ctrl-C) is acted on at once instead of after the command; the
# job's pid is in `bounded_pid` meanwhile. Redirect the call as you would the command.
bounded() {
    local secs=$1 rc=0
    shift
    timeout --kill-after=10 "$secs" "$@" &
    bounded_pid=$!
    wait "$bounded_pid" || rc=$?
    bounded_pid=""
    return "$rc"
}
# Traps INT and TERM: stop the job `bounded` is waiting for, then exit (the EXIT trap cleans up).
trap_signals() {
    trap '[ -z "${bounded_pid:-}" ] || kill -TERM "$bounded_pid" 2>/dev/null; exit 130' INT
    trap '[ -z "${bounded_pid:-}" ] || kill -TERM "$bounded_pid" 2>/dev/null; exit 143' TERM
}
