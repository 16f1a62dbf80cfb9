#!/bin/bash
# The benchmark's agent wrapper (test/bench/agents.yaml): counts and times every agent execution on
# its own, apart from what the service records. It appends "start PID TIME TASK ATTEMPT" to the file
# named by BENCH_SPAWN_LOG_PATH (TASK and ATTEMPT: the worker's ATELIER_TASK_ID and ATELIER_ATTEMPT,
# which file each execution under its task; "-" for one unset or empty), runs the agent's program with
# its arguments as given (the prompt stays an argument or on stdin: nothing here evaluates it), then
# appends "exit PID TIME STATUS" and exits with the program's status. TIME is the wall clock in
# seconds with microseconds (bash's EPOCHREALTIME: no process is started to read it). It waits for
# the program instead of exec'ing it, so that each agent's end is logged too; the worker sees this
# script as the agent, its slot freed when it exits.
# Each line is one write to a file opened for appending, so concurrent agents' lines never mix.
log=${BENCH_SPAWN_LOG_PATH:?names the spawn log (the bench passes it through the agents file)}
# Only expanded, never evaluated; anything but letters, digits and "-" becomes "_", so that a value
# cannot split the line or add one.
task=${ATELIER_TASK_ID:--}
attempt=${ATELIER_ATTEMPT:--}
printf 'start %d %s %s %s\n' "$$" "$EPOCHREALTIME" "${task//[^[:alnum:]-]/_}" "${attempt//[^[:alnum:]-]/_}" >>"$log"
# A program named by a relative path resolves from the repository root, as the worker resolves the
# agents file's programs from its directory: the agent runs in the task's workdir.
case $1 in
  /*) ;;
  */*) set -- "${BASH_SOURCE[0]%/*}/../../$1" "${@:2}" ;;
esac
"$@"
status=$?
printf 'exit %d %s %d\n' "$$" "$EPOCHREALTIME" "$status" >>"$log"
exit "$status"
