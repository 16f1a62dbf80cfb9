package main

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// An agent's tools may leave its process group: Codex runs each shell command in a group of its own,
// and a command may go further and lead a session of its own (a daemon). Killing the agent's group
// misses them, and a pipe they do not hold gives them away no other way. The spawner therefore is a
// child subreaper (PR_SET_CHILD_SUBREAPER): whatever an agent leaves behind when it exits, or when the
// process between them exits, becomes the spawner's child instead of init's, and stays in its tree.
// When an agent exits, the spawner kills what of its tree came from that agent: the processes of the
// agent's session (whose id is the agent's pid, unique while the agent is not reaped) and those that
// carry the agent's tag in their environment (tagVariable, which children inherit), with all their
// descendants and the process group of each, and reads /proc again until it finds none of them alive:
// a process forked while they are killed is found by a later read. A process that both leads a session of its own and clears its environment cannot be
// told apart from another agent's: it is killed when the spawner closes (killAll), with the whole tree.

// tagVariable names the environment variable that marks each agent's processes: "<spawner pid>.<id>".
const tagVariable = "ATELIER_AGENT_TAG"

func agentTag(id uint32) string {
	return fmt.Sprintf("%d.%d", os.Getpid(), id)
}

// withTag is env with the agent's tag, and no other value of its variable (a profile's own would come
// first for getenv, and the agent's processes would carry that one).
func withTag(env []string, tag string) []string {
	tagged := make([]string, 0, len(env)+1)
	for _, entry := range env {
		if !strings.HasPrefix(entry, tagVariable+"=") {
			tagged = append(tagged, entry)
		}
	}
	return append(tagged, tagVariable+"="+tag)
}

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of <linux/prctl.h>, which the syscall package does not name.
const prSetChildSubreaper = 36

// becomeSubreaper makes the spawner the reaper of its agents' orphans.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return errno
	}
	return nil
}

// proc is what /proc/<pid>/stat says of a process.
type proc struct {
	pid, ppid, pgrp, session int
	zombie                   bool
}

// readProc parses /proc/<pid>/stat; false if the process is gone or the file unreadable. It reads
// with bare system calls into buf: a scan reads one such file per process on the machine.
func readProc(pid int, buf []byte) (proc, bool) {
	fd, err := syscall.Open("/proc/"+strconv.Itoa(pid)+"/stat", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return proc{}, false
	}
	n, err := syscall.Read(fd, buf)
	_ = syscall.Close(fd)
	if err != nil || n <= 0 {
		return proc{}, false
	}
	stat := buf[:n]
	// "pid (comm) state ppid pgrp session …": comm may hold spaces and parentheses; it ends at the last ')'.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return proc{}, false
	}
	fields := bytes.Fields(stat[end+1:])
	if len(fields) < 4 {
		return proc{}, false
	}
	ppid, err1 := strconv.Atoi(string(fields[1]))
	pgrp, err2 := strconv.Atoi(string(fields[2]))
	session, err3 := strconv.Atoi(string(fields[3]))
	if err1 != nil || err2 != nil || err3 != nil {
		return proc{}, false
	}
	return proc{pid: pid, ppid: ppid, pgrp: pgrp, session: session, zombie: len(fields[0]) == 1 && fields[0][0] == 'Z'}, true
}

// processTable is every process /proc shows, and the children of each.
type processTable struct {
	procs    []proc
	children map[int][]int
	byPid    map[int]proc
}

// readTable reads the process table for killLeftovers and killTree (a variable, so that tests can slow it).
var readTable = readProcessTable

func readProcessTable() processTable {
	table := processTable{children: map[int][]int{}, byPid: map[int]proc{}}
	dir, err := os.Open("/proc")
	if err != nil {
		return table
	}
	names, _ := dir.Readdirnames(-1)
	_ = dir.Close()
	buf := make([]byte, 1024)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if p, ok := readProc(pid, buf); ok {
			table.procs = append(table.procs, p)
			table.children[p.ppid] = append(table.children[p.ppid], pid)
			table.byPid[pid] = p
		}
	}
	return table
}

// withDescendants adds to roots every process below them.
func (t processTable) withDescendants(roots []int) []int {
	seen := map[int]bool{}
	var all []int
	for queue := roots; len(queue) > 0; {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		all = append(all, pid)
		queue = append(queue, t.children[pid]...)
	}
	return all
}

// hasTag answers whether the process's environment holds the agent's tag. A process in the middle of
// an exec shows an empty environment for a moment (/proc reads the memory it is leaving): a daemon that
// wrote its pid and execs its program as its agent exits would escape. An empty read is therefore read
// again a few times; a process that cleared its environment costs those reads only.
func hasTag(pid int, tag string) bool {
	path := "/proc/" + strconv.Itoa(pid) + "/environ"
	environ, err := os.ReadFile(path)
	for retry := 0; err == nil && len(environ) == 0 && retry < emptyEnvironRereads; retry++ {
		time.Sleep(2 * time.Millisecond)
		environ, err = os.ReadFile(path)
	}
	if err != nil {
		return false
	}
	want := []byte(tagVariable + "=" + tag)
	for _, entry := range bytes.Split(environ, []byte{0}) {
		if bytes.Equal(entry, want) {
			return true
		}
	}
	return false
}

// killLeftovers kills what an exited agent (still unreaped, so its pid stays its session's id) left
// running outside its process group, waits for that to die, reaps the spawner's dead orphans, and
// answers the pids it killed. A process may fork between a read of /proc and its kill (a test runner
// starting its workers): its child is in no table read so far. Each victim's process group is killed
// with it (the kernel lets no fork escape a group's kill), and /proc is read again until a read finds
// nothing alive to kill (or leftoverDeathWait has passed): what escaped both is found by the next read,
// in the agent's session, below a victim, or the spawner's orphan with the agent's tag.
func killLeftovers(agentPid int, tag string) []int {
	self := os.Getpid()
	var killed []int
	found := map[int]bool{}
	for deadline := time.Now().Add(leftoverDeathWait); ; {
		table := readTable()
		reapOrphans(table)
		var roots []int
		for _, p := range table.procs {
			switch {
			case p.pid == agentPid || p.pid == self || p.zombie:
			case p.session == agentPid:
				roots = append(roots, p.pid)
			case p.ppid == self && hasTag(p.pid, tag):
				roots = append(roots, p.pid)
			}
		}
		alive := table.alive(table.withDescendants(roots))
		for _, pid := range alive {
			if !found[pid] {
				found[pid] = true
				killed = append(killed, pid)
			}
		}
		table.killWithGroups(alive)
		// Nothing alive is left, and what was killed has been reaped (a process in uninterruptible sleep
		// dies only when that ends; the next agent's exit reaps it then).
		if (len(alive) == 0 && !table.holdsAny(killed)) || time.Now().After(deadline) {
			return killed
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive is those of the pids whose processes are in the table and not zombies.
func (t processTable) alive(pids []int) []int {
	var living []int
	for _, pid := range pids {
		if p, ok := t.byPid[pid]; ok && !p.zombie {
			living = append(living, pid)
		}
	}
	return living
}

// killWithGroups SIGKILLs each process and its process group: a child it forks while it is being
// killed is in its group, unless that child leaves the group at once, which a next read of /proc
// finds. Never the spawner's own group, nor a group of init's.
func (t processTable) killWithGroups(pids []int) {
	own := syscall.Getpgrp()
	for _, pid := range pids {
		if pgrp := t.byPid[pid].pgrp; pgrp != own && pgrp > 1 {
			_ = syscall.Kill(-pgrp, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// How many times hasTag reads an empty environment again before it takes it for one.
const emptyEnvironRereads = 5

// How long killLeftovers and killTree read /proc again and kill what they find, and killLeftovers
// waits for what it killed to be gone.
var leftoverDeathWait = 2 * time.Second

// holdsAny answers whether one of the pids is still in the table, alive or dead and unreaped.
func (t processTable) holdsAny(pids []int) bool {
	present := map[int]bool{}
	for _, p := range t.procs {
		present[p.pid] = true
	}
	for _, pid := range pids {
		if present[pid] {
			return true
		}
	}
	return false
}

// killTree kills every process below the spawner, each with its process group: what its agents
// started, wherever it went. As killLeftovers does, it reads /proc again until a read finds nothing
// alive below the spawner (or leftoverDeathWait has passed): a process forked during the kill, its
// parent's orphan by then, is the spawner's child and found by the next read.
func killTree() {
	self := os.Getpid()
	for deadline := time.Now().Add(leftoverDeathWait); ; time.Sleep(5 * time.Millisecond) {
		table := readTable()
		alive := table.alive(table.withDescendants(table.children[self]))
		if len(alive) == 0 || time.Now().After(deadline) {
			return
		}
		table.killWithGroups(alive)
	}
}

// An orphan the spawner adopted that exits while its agent still runs stays the spawner's zombie until
// it is reaped; an agent whose tools start short-lived processes this way (a test runner's workers)
// would otherwise pile them up against the pids limit until it exits. On SIGCHLD the spawner therefore
// reaps its dead orphans (reapOrphans, which leaves agents to the goroutines that wait for them), at
// most once per orphanReapInterval: signals that come meanwhile make one reap after it. The answer stops
// it (for tests).
func reapOnChildSignals() (stop func()) {
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-children:
			}
			reaped := reapOrphans(readProcessTable())
			select {
			case <-done:
				return
			case <-time.After(orphanReapInterval):
			}
			if !reaped {
				// A spawn was under way: try again.
				select {
				case children <- syscall.SIGCHLD:
				default:
				}
			}
		}
	}()
	return func() {
		signal.Stop(children)
		close(done)
		<-finished
	}
}

// The shortest time between two reaps on SIGCHLD: each reads /proc whole.
const orphanReapInterval = time.Second

// reapOrphans reaps the spawner's children in the table that have exited and are no agents: orphans
// it adopted. Agents are left to the goroutines that wait for them. While a spawn is under way, the
// pid of its agent (which may have exited already) is not known: nothing is reaped then, and the next
// agent's exit, or the next reap on SIGCHLD, reaps what is left. The lock keeps a spawn from starting
// meanwhile. It answers false if it reaped nothing because a spawn was under way.
func reapOrphans(table processTable) bool {
	running.Lock()
	defer running.Unlock()
	if running.starting {
		return false
	}
	self := os.Getpid()
	for _, p := range table.procs {
		if p.ppid == self && p.zombie && !running.unreaped[p.pid] {
			var status syscall.WaitStatus
			_, _ = syscall.Wait4(p.pid, &status, syscall.WNOHANG, nil)
		}
	}
	return true
}
