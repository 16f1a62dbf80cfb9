package main

import (
	"encoding/binary"
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

// forkLoop, left in a group of its own as leaveGroup is, writes its pid to $1 and forks without pause, as
// a test runner starts its workers: each child sleeps, and the loop kills its oldest beyond 20 (reaped
// at once: SIGCHLD ignored), so that forks go on while few processes live. A child forked after a read
// of /proc and before its parent's kill is in no table read so far.
const forkLoop = `perl -e 'setpgrp; $SIG{CHLD} = "IGNORE"; open(F, ">", $ARGV[0]); print F "$$\n"; close F; my @kids; ` +
	`while (1) { my $kid = fork; next unless defined $kid; if ($kid == 0) { exec "sleep", "30"; } ` +
	`push @kids, $kid; if (@kids > 20) { kill 9, shift @kids; } }' ` +
	`"$1" >/dev/null 2>&1 </dev/null &`

// slowReads makes each read of the process table take 20 ms longer, as on a host of thousands of
// processes: a fork loop forks many times between a read and its kill.
func slowReads(t *testing.T) {
	t.Cleanup(func() { readTable = readProcessTable })
	readTable = func() processTable {
		table := readProcessTable()
		time.Sleep(20 * time.Millisecond)
		return table
	}
}

// startedPid is the pid of the agent the frames written so far report started.
func (b *lockedBuffer) startedPid() int {
	for _, f := range b.frames() {
		if f.kind == 'P' && len(f.payload) >= 4 {
			return int(binary.BigEndian.Uint32(f.payload))
		}
	}
	return 0
}

// runLoop runs r, whose script starts forkLoop, and answers its frames and its agent's pid once the
// loop has started.
func runLoop(t *testing.T, r request) (*lockedBuffer, int) {
	t.Helper()
	buf, pidFile := run(t, r)
	killOnFailure(t, readPid(t, pidFile))
	agent := buf.startedPid()
	if agent == 0 {
		t.Fatal("no pid of the agent")
	}
	return buf, agent
}

// sessionMembers are the processes alive (no zombies) in the session whose id is session.
func sessionMembers(session int) []int {
	var members []int
	for _, p := range readProcessTable().procs {
		if p.session == session && !p.zombie {
			members = append(members, p.pid)
		}
	}
	return members
}

// waitSessionEmpty waits until no process of the session lives, and fails, killing those left, if one
// still does 5 s on: the kills are over by then.
func waitSessionEmpty(t *testing.T, session int, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		members := sessionMembers(session)
		if len(members) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range members {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("%s: %d processes of the agent's session live on: %v", what, len(members), members)
		}
	}
}

// What a fork loop in a group of its own forks while it is being killed, at its agent's exit, dies too.
func TestAForkLoopDiesWhole(t *testing.T) {
	startAsSpawner(t)
	slowReads(t)
	buf, agent := runLoop(t, leaving(7601, forkLoop))
	if exit := waitForClose(t, buf); exit != `{"code":0}` {
		t.Fatalf("the agent ended with %s", exit)
	}
	waitSessionEmpty(t, agent, "after the agent's exit")
}

// What a fork loop in a group of its own forks while it is being killed, at the spawner's stop, dies too.
func TestAForkLoopDiesWholeWithTheSpawner(t *testing.T) {
	startAsSpawner(t)
	reopenAfterKillAll(t)
	slowReads(t)
	// Running on, the agent is killed with killAll; no look at its exit (LeavesNothing) kills for it.
	buf, agent := runLoop(t, request{
		ID: 7701, Path: "/bin/sh", Args: []string{"-c", forkLoop + ` sleep 60`, "agent"}, Env: os.Environ(), LeavesNothing: true,
	})
	killAll()
	waitSessionEmpty(t, agent, "after killAll")
	waitForClose(t, buf)
}

// Orphans an agent leaves that exit while it runs on are reaped then, not left the spawner's zombies
// until the agent exits.
func TestOrphansThatExitAreReapedWhileTheirAgentRuns(t *testing.T) {
	startAsSpawner(t)
	t.Cleanup(reapOnChildSignals())
	// 100 processes, each orphaned at once (its parent, a subshell, exits), write their pids and exit.
	const orphans = 100
	script := `i=0; while [ $i -lt ` + strconv.Itoa(orphans) + ` ]; do ( sh -c 'echo $$ >> "$1"' orphan "$1" & ); i=$((i+1)); done; sleep 60`
	buf, pidFile := run(t, request{ID: 7801, Path: "/bin/sh", Args: []string{"-c", script, "agent"}, Env: os.Environ()})
	t.Cleanup(func() {
		signalAgent(7801, syscall.SIGKILL)
		waitForClose(t, buf)
	})
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); len(pids) < orphans; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the orphans wrote %d pids of %d", len(pids), orphans)
		}
		data, _ := os.ReadFile(pidFile)
		pids = nil
		for _, line := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(line)
			if err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
	}
	// Each is the spawner's child until reaped (its pid may pass to another process after).
	self, buf1k := os.Getpid(), make([]byte, 1024)
	for _, pid := range pids {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if p, ok := readProc(pid, buf1k); !ok || p.ppid != self {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the orphan %d is still the spawner's child", pid)
			}
		}
	}
	if kinds, _ := buf.frameKinds(); strings.Contains(kinds, "X") {
		t.Fatal("the agent exited: its exit, not the orphans', reaped them")
	}
}
