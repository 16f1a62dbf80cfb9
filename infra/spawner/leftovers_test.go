package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These run the agent through start(), as the spawner's requests goroutine does, with the test process
// as the child subreaper the spawner makes itself.
func startAsSpawner(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("no perl, which the agents of these tests run to leave their process group")
	}
}

// run starts r, with a file its script writes pids to as its last argument.
func run(t *testing.T, r request) (*lockedBuffer, string) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pid")
	buf := &lockedBuffer{}
	r.Args = append(r.Args, pidFile)
	start(r, &frames{out: buf})
	return buf, pidFile
}

// readPid waits until the agent has written the pid of the process it left.
func readPid(t *testing.T, file string) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if data, err := os.ReadFile(file); err == nil && strings.HasSuffix(string(data), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent wrote no pid")
		}
	}
}

// killOnFailure kills pid at the end of a test that failed before the spawner did: nothing it left
// sleeps on.
func killOnFailure(t *testing.T, pid int) {
	t.Cleanup(func() {
		if t.Failed() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// gone answers whether the process no longer exists, not even as a zombie.
func gone(pid int) bool {
	_, present := readProc(pid, make([]byte, 1024))
	return !present
}

func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !gone(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) is still there", what, pid)
		}
	}
}

// Each leaves its pid in $1 and goes on sleeping with its output closed: nothing holds the agent's
// output, so only its place in the process tree gives it away.
const (
	// In a process group of its own, as Codex runs every shell command.
	leaveGroup = `perl -e 'setpgrp; open(F, ">", $ARGV[0]); print F "$$\n"; close F; exec "sleep", "60"' "$1" >/dev/null 2>&1 </dev/null &`
	// In a session of its own: a daemon.
	leaveSession = `setsid perl -e 'open(F, ">", $ARGV[0]); print F "$$\n"; close F; exec "sleep", "60"' "$1" >/dev/null 2>&1 </dev/null &`
)

// leaving is request id for an agent that starts `leave` (leaveGroup, leaveSession) and exits once what
// it started has written its pid.
func leaving(id uint32, leave string) request {
	script := leave + ` while [ ! -s "$1" ]; do sleep 0.01; done`
	return request{ID: id, Path: "/bin/sh", Args: []string{"-c", script, "agent"}, Env: os.Environ()}
}

// exitsAfterLeaving runs r (see leaving) until its run has closed, after an exit 0, and answers the pid
// of the process it left.
func exitsAfterLeaving(t *testing.T, r request) int {
	t.Helper()
	buf, pidFile := run(t, r)
	left := readPid(t, pidFile)
	killOnFailure(t, left)
	if exit := waitForClose(t, buf); exit != `{"code":0}` {
		t.Fatalf("the agent ended with %s", exit)
	}
	return left
}

// What an agent left in a process group of its own is killed when the agent exits, and reaped.
func TestAProcessInAGroupOfItsOwnDiesWithItsAgent(t *testing.T) {
	startAsSpawner(t)
	left := exitsAfterLeaving(t, leaving(7301, leaveGroup))
	waitGone(t, left, "the process the agent left in a group of its own")
}

// What an agent left in a session of its own, its output closed (a daemon), is killed when the agent
// exits; another agent's daemon is not, until that agent exits too.
func TestADaemonDiesWithItsAgentOnly(t *testing.T) {
	startAsSpawner(t)
	long, longPidFile := run(t, request{
		ID: 7401, Path: "/bin/sh", Args: []string{"-c", leaveSession + ` sleep 60`, "agent"}, Env: os.Environ(),
	})
	t.Cleanup(func() { signalAgent(7401, syscall.SIGKILL) })
	longDaemon := readPid(t, longPidFile)
	killOnFailure(t, longDaemon)
	shortDaemon := exitsAfterLeaving(t, leaving(7402, leaveSession))
	waitGone(t, shortDaemon, "the daemon of the agent that exited")
	if gone(longDaemon) {
		t.Fatal("the daemon of an agent still running was killed")
	}
	if !signalAgent(7401, syscall.SIGKILL) {
		t.Fatal("the running agent was not signalled")
	}
	waitForClose(t, long)
	waitGone(t, longDaemon, "the daemon of the agent killed")
}

// A request for a program known to leave nothing behind (the worker's git) is not followed by a look
// through /proc: what it left in a group of its own stays.
func TestARequestThatLeavesNothingIsNotSwept(t *testing.T) {
	startAsSpawner(t)
	git := leaving(7501, leaveGroup)
	git.LeavesNothing = true
	left := exitsAfterLeaving(t, git)
	t.Cleanup(func() { _ = syscall.Kill(left, syscall.SIGKILL) })
	if gone(left) {
		t.Fatal("the exit of a program that leaves nothing behind was followed by a sweep")
	}
}

// An agent's environment holds its own tag once, whatever value of the variable it was given.
func TestAnAgentsTagReplacesAGivenOne(t *testing.T) {
	env := withTag([]string{"PATH=/bin", tagVariable + "=forged", "HOME=/root"}, "7.1")
	want := []string{"PATH=/bin", "HOME=/root", tagVariable + "=7.1"}
	if strings.Join(env, "\n") != strings.Join(want, "\n") {
		t.Fatalf("env %q, want %q", env, want)
	}
}
