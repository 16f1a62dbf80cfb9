// Command atelier-spawner starts agent processes for one Atelier agent worker, which runs it as its
// child (activities/agent/agent-spawner.ts).
//
// Why: Node's child_process forks the whole worker, copying the page tables of a process of 100 MB
// and more and blocking its event loop until the child has exec'd. Go starts a child with
// clone(CLONE_VM|CLONE_VFORK): nothing is copied, whatever the parent's size, and it sets the child's
// process group and parent-death signal itself, so no setpriv runs before the agent.
//
// Each agent's stdin, stdout and stderr are Unix socket pairs, as Node makes them for a child. A
// request's prompt file is the agent's file descriptor 3 (/dev/fd/3), as the worker's own way of
// spawning gives it.
//
// Protocol. Standard input: one JSON request per line: a spawn request, or {"id":…,"signal":15} to
// signal the process group of the agent that request started. Standard output: frames of a 1-byte type,
// the request's 4-byte id and a 4-byte payload length (big-endian), then the payload:
//
//	'P' started     the process's pid, 4 bytes, then JSON ["socket:[…]", …]: its stdout's and stderr's
//	                sockets, by which the worker finds what holds them should the spawner die
//	'F' failed      JSON {"code":"ENOENT","message":"…"}: the process could not be started
//	'O' stdout      a chunk of the process's standard output
//	'E' stderr      a chunk of its standard error
//	'X' exited      JSON {"code":0} or {"signal":9}: the process exited; the rest of its group is killed
//	'C' closed      the process exited and both of its output pipes are closed: nothing follows
//
// Signals go through the spawner, which sends them to an agent's process group (its pid) only while it
// has not reaped the agent: the agent's pid, which is the group's id, cannot pass to another process
// before then, so no signal meant for an agent reaches another (the worker, signalling the group
// itself, could not know whether the agent had been reaped). When an agent exits, the spawner SIGKILLs
// what it left in its group before reaping it, and what it left outside its group (leftovers.go). Signal requests are served as they are read, even while
// a spawn is under way (one stuck in exec, on a hung mount, holds back no other agent's stop); one for
// an agent whose spawn request came before it but has not started yet is sent once it has. Each agent leads a session
// and process group of its own, as Node's detached children do. A process that left the agent's group
// (a daemon, in a session of its own) and still holds its output 2 s after the agent exited is killed,
// so the run ends and nothing of it lives on.
//
// Lifetime: the spawner dies with the worker (parent-death signal SIGTERM, even when the worker is
// killed with SIGKILL), and then, as when its standard input closes, kills every agent's process
// group and every process below it and exits; each agent dies with the spawner too (parent-death signal SIGKILL), should the
// spawner itself be killed with SIGKILL.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

type request struct {
	ID   uint32   `json:"id"`
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	// Written to the process's standard input, which is then closed; unset: closed at once.
	Stdin *string `json:"stdin"`
	// Given to the process as its file descriptor 3: a file holding this, read-only and unlinked,
	// written in a directory of its own under TmpDir (the worker's TMPDIR; empty: the system's).
	PromptFile *string `json:"promptFile"`
	TmpDir     string  `json:"tmpDir"`
	// A program known to leave no process behind (git under the worker's fixed settings): its exit is
	// not followed by a look for what it left outside its group (killLeftovers), which reads /proc whole.
	LeavesNothing bool `json:"leavesNothing"`
	// Set: not a spawn, but this signal for the process group of the agent request ID started.
	Signal syscall.Signal `json:"signal"`
}

// frames writes whole frames to standard output, one write each, from any goroutine.
type frames struct {
	mu  sync.Mutex
	out io.Writer
}

func (f *frames) send(kind byte, id uint32, payload []byte) {
	frame := make([]byte, 9+len(payload))
	frame[0] = kind
	binary.BigEndian.PutUint32(frame[1:5], id)
	binary.BigEndian.PutUint32(frame[5:9], uint32(len(payload)))
	copy(frame[9:], payload)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.out.Write(frame); err != nil {
		// The worker is gone: so are its agents' reasons to run.
		killAll()
		os.Exit(1)
	}
}

func (f *frames) sendJSON(kind byte, id uint32, v any) {
	payload, _ := json.Marshal(v)
	f.send(kind, id, payload)
}

// running maps each request id to the pid of its agent until the agent is reaped, so that signals
// reach the agent's group only while its id is the agent's, and a closing spawner can kill the groups.
var running = struct {
	sync.Mutex
	pids map[uint32]int
	// queued holds the spawn requests read but not started yet, each with the signal asked for it
	// meanwhile (0: none; SIGKILL outranks any other), sent as soon as its agent has started.
	queued map[uint32]syscall.Signal
	// unreaped holds the pid of every agent started and not reaped yet (reapOrphans leaves them alone).
	unreaped map[int]bool
	// starting: a spawn is between its start and its entry in pids. closing: killAll has begun.
	starting, closing bool
}{pids: map[uint32]int{}, queued: map[uint32]syscall.Signal{}, unreaped: map[int]bool{}}

// How long killAll waits for a spawn under way to enter its agent in running.pids.
var startWait = 5 * time.Second

// queueSpawn notes a spawn request read, so that signals for it that arrive before its agent has
// started are kept for it.
func queueSpawn(id uint32) {
	running.Lock()
	defer running.Unlock()
	running.queued[id] = 0
}

// signalAgent sends sig to the process group of request id's agent, or keeps it for an agent whose
// spawn request is queued; nothing for one that is not running (reaped, never started, or unknown).
// It answers whether it sent or kept the signal.
func signalAgent(id uint32, sig syscall.Signal) bool {
	running.Lock()
	defer running.Unlock()
	if pid, ok := running.pids[id]; ok {
		_ = syscall.Kill(-pid, sig)
		return true
	}
	kept, queued := running.queued[id]
	if queued && kept != syscall.SIGKILL {
		running.queued[id] = sig
	}
	return queued
}

// beginStart answers whether a spawn may start its agent: not once killAll has begun.
func beginStart() bool {
	running.Lock()
	defer running.Unlock()
	running.starting = !running.closing
	return running.starting
}

// endStart ends request id's spawn: with its agent's pid, it enters the agent in running.pids and
// sends it the signal kept for it (SIGKILL, once killAll has begun); with none, it forgets the request.
func endStart(id uint32, pid int) {
	running.Lock()
	defer running.Unlock()
	kept := running.queued[id]
	delete(running.queued, id)
	running.starting = false
	if pid == 0 {
		return
	}
	running.pids[id] = pid
	running.unreaped[pid] = true
	if running.closing {
		kept = syscall.SIGKILL
	}
	if kept != 0 {
		_ = syscall.Kill(-pid, kept)
	}
}

// outputs maps each agent's request id to its output sockets until they are read to their end, so a
// closing spawner can also kill the processes that left the agents' groups and hold them (daemons).
var outputs = struct {
	sync.Mutex
	inodes map[uint32]map[string]bool
}{inodes: map[uint32]map[string]bool{}}

func killAll() {
	running.Lock()
	running.closing = true
	// A spawn under way enters its agent at once, unless its exec is stuck: wait for it, not for ever.
	for deadline := time.Now().Add(startWait); running.starting && time.Now().Before(deadline); {
		running.Unlock()
		time.Sleep(5 * time.Millisecond)
		running.Lock()
	}
	for _, pid := range running.pids {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	running.Unlock()
	killTree()
	all := map[string]bool{}
	outputs.Lock()
	for _, inodes := range outputs.inodes {
		for inode := range inodes {
			all[inode] = true
		}
	}
	outputs.Unlock()
	killHolders(all)
}

// errClosing refuses a spawn that comes after killAll has begun: the spawner is exiting.
var errClosing = errors.New("the spawner is closing")

// errnoNames are the codes Node gives the same failures, so both ways of spawning report alike.
var errnoNames = map[syscall.Errno]string{
	syscall.ENOENT: "ENOENT", syscall.EACCES: "EACCES", syscall.EPERM: "EPERM", syscall.ENOEXEC: "ENOEXEC",
	syscall.ENOTDIR: "ENOTDIR", syscall.EISDIR: "EISDIR", syscall.ELOOP: "ELOOP", syscall.E2BIG: "E2BIG",
	syscall.ENAMETOOLONG: "ENAMETOOLONG", syscall.ENOMEM: "ENOMEM", syscall.EAGAIN: "EAGAIN",
	syscall.EMFILE: "EMFILE", syscall.ENFILE: "ENFILE", syscall.ETXTBSY: "ETXTBSY", syscall.EINVAL: "EINVAL",
}

// promptFileError is a failure to write a request's prompt file: the machine's (its temporary
// directory), not the agent program's, which the worker retries.
type promptFileError struct{ error }

func failure(path string, err error) map[string]string {
	if errors.As(err, new(promptFileError)) {
		return map[string]string{"code": "PROMPT_FILE", "message": fmt.Sprintf("could not write the prompt file: %v", err)}
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return map[string]string{"code": "UNKNOWN", "message": fmt.Sprintf("spawn %s: %v", path, err)}
	}
	if name, ok := errnoNames[errno]; ok {
		return map[string]string{"code": name, "message": fmt.Sprintf("spawn %s %s", path, name)}
	}
	return map[string]string{"code": "UNKNOWN", "message": fmt.Sprintf("spawn %s: %v", path, errno)}
}

// startAgent starts the program as execvp(3) would once it has found it: a file the kernel cannot
// execute (ENOEXEC: a script without a #! line) runs through /bin/sh with its path and arguments, as
// the agent worker's own child_process does. Each agent leads a session and process group of its own
// (as child_process's detached children do) and gets SIGKILL when the spawner dies.
func startAgent(r request, files []*os.File) (*os.Process, error) {
	attr := &os.ProcAttr{
		Dir:   r.Dir,
		Env:   r.Env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL},
	}
	proc, err := os.StartProcess(r.Path, append([]string{r.Path}, r.Args...), attr)
	if errors.Is(err, syscall.ENOEXEC) {
		return os.StartProcess("/bin/sh", append([]string{"/bin/sh", r.Path}, r.Args...), attr)
	}
	return proc, err
}

// socketPair makes one of an agent's stdio channels: a connected pair of Unix sockets, as Node's
// child_process makes them, so agents see the same kind of stdin, stdout and stderr (and the same
// buffer sizes) whichever way they were started. The worker's end is non-blocking (Go's poller
// serves it); the agent's end is blocking, as programs expect of their stdio.
func socketPair() (mine, theirs *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		_ = syscall.Close(fds[0])
		_ = syscall.Close(fds[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "agent-stdio"), os.NewFile(uintptr(fds[1]), "agent-stdio"), nil
}

// unlinkedFile opens, read-only, a file holding content that no directory names any more: written in
// a directory only this user may enter, opened, and removed with that directory. Its content lives as
// long as a descriptor of it is open, and no longer, even if the spawner is killed.
func unlinkedFile(parent, content string) (*os.File, error) {
	dir, err := os.MkdirTemp(parent, "atelier-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := dir + "/file"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return nil, err
	}
	return os.Open(path)
}

// waitExited blocks until process pid has exited, without reaping it (waitid with WNOWAIT): while it
// is a zombie its pid, and its process group's id, stay taken. False if that cannot be waited for.
func waitExited(pid int) bool {
	const pPid = 1     // idtype_t P_PID, which the syscall package does not name
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPid, uintptr(pid), uintptr(unsafe.Pointer(&info[0])),
			syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return errno == 0
		}
	}
}

// After its agent has exited, an agent's output stays open only while a process that left the agent's
// process group (a session of its own: a daemon) still holds it. The spawner waits this long for such a
// process to close it, then kills it, and after killGrace more stops reading if one still does. Output
// that nothing holds is read to its end, for up to drainLimit after the grace (a worker that takes
// frames that slowly is stuck; a holder /proc does not show would be found no other way). Variables,
// so that tests can shorten them.
var (
	outputGrace = 2 * time.Second
	killGrace   = time.Second
	drainLimit  = time.Minute
)

// socketInodes are the inodes of sockets, as /proc/<pid>/fd shows them ("socket:[inode]").
func socketInodes(files ...*os.File) map[string]bool {
	inodes := map[string]bool{}
	for _, f := range files {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err == nil {
			inodes[fmt.Sprintf("socket:[%d]", st.Ino)] = true
		}
	}
	return inodes
}

// holders are the processes with a descriptor on one of the sockets.
func holders(inodes map[string]bool) []int {
	procs, _ := os.ReadDir("/proc")
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir("/proc/" + p.Name() + "/fd")
		for _, fd := range fds {
			if link, err := os.Readlink("/proc/" + p.Name() + "/fd/" + fd.Name()); err == nil && inodes[link] {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// killHolders kills the processes holding one of the sockets, each with its process group (never the
// spawner's own), and answers how many it found.
func killHolders(inodes map[string]bool) int {
	if len(inodes) == 0 {
		return 0
	}
	held := holders(inodes)
	own := syscall.Getpgrp()
	for _, pid := range held {
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid != own && pgid > 1 {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(held)
}

// awaitOutputClosed waits until the exited agent's output is read to its end. A process that escaped
// the agent's process group and holds the output open would keep the run from ending, and outlive it:
// after outputGrace it is killed, with its own process group, and if one still holds the output
// killGrace later (a kill that did not end it), the output is closed on this side. While nothing holds
// it, its end is on its way: the readers may be slow only because the worker is busy taking what they
// read, and closing it then would lose the agent's last output (often its result).
func awaitOutputClosed(reading *sync.WaitGroup, inodes map[string]bool, readEnds []*os.File) {
	done := make(chan struct{})
	go func() {
		reading.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(outputGrace):
	}
	closeOutput := func() {
		for _, f := range readEnds {
			_ = f.Close()
		}
	}
	if killHolders(inodes) > 0 {
		select {
		case <-done:
			return
		case <-time.After(killGrace):
		}
		if len(holders(inodes)) > 0 {
			closeOutput()
		}
	}
	select {
	case <-done:
	case <-time.After(drainLimit):
		closeOutput()
		<-done
	}
}

// start runs one request. It is called from a single goroutine locked to its OS thread: a child's
// parent-death signal fires when the thread that started it exits, and this one never does.
func start(r request, out *frames) {
	stdinW, stdinR, err1 := socketPair()
	stdoutR, stdoutW, err2 := socketPair()
	stderrR, stderrW, err3 := socketPair()
	if err := errors.Join(err1, err2, err3); err != nil {
		for _, f := range []*os.File{stdinR, stdinW, stdoutR, stdoutW, stderrR, stderrW} {
			if f != nil {
				_ = f.Close()
			}
		}
		endStart(r.ID, 0)
		out.sendJSON('F', r.ID, failure(r.Path, err))
		return
	}
	// The agent's ends of its output, by inode: how processes still holding them are found later.
	outputInodes := socketInodes(stdoutW, stderrW)
	files := []*os.File{stdinR, stdoutW, stderrW}
	var err error
	if r.PromptFile != nil {
		var prompt *os.File
		if prompt, err = unlinkedFile(r.TmpDir, *r.PromptFile); err == nil {
			files = append(files, prompt)
		} else {
			err = promptFileError{err}
		}
	}
	var proc *os.Process
	if err == nil && !beginStart() {
		err = errClosing
	}
	if err == nil {
		r.Env = withTag(r.Env, agentTag(r.ID))
		proc, err = startAgent(r, files)
	}
	// The child has its copies; the parent keeps the ends it reads and writes.
	for _, f := range files {
		_ = f.Close()
	}
	if err != nil {
		_ = stdinW.Close()
		_ = stdoutR.Close()
		_ = stderrR.Close()
		endStart(r.ID, 0)
		out.sendJSON('F', r.ID, failure(r.Path, err))
		return
	}
	endStart(r.ID, proc.Pid)
	outputs.Lock()
	outputs.inodes[r.ID] = outputInodes
	outputs.Unlock()
	sockets := make([]string, 0, len(outputInodes))
	for inode := range outputInodes {
		sockets = append(sockets, inode)
	}
	socketList, _ := json.Marshal(sockets)
	started := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(socketList)), uint32(proc.Pid))
	out.send('P', r.ID, append(started, socketList...))

	go func() {
		// An agent that exits without reading its prompt closes the pipe: that is its business.
		if r.Stdin != nil {
			_, _ = io.WriteString(stdinW, *r.Stdin)
		}
		_ = stdinW.Close()
	}()
	var reading sync.WaitGroup
	for _, pipe := range []struct {
		kind byte
		file *os.File
	}{{'O', stdoutR}, {'E', stderrR}} {
		reading.Add(1)
		go func() {
			defer reading.Done()
			defer pipe.file.Close()
			buf := make([]byte, 64*1024)
			for {
				n, err := pipe.file.Read(buf)
				if n > 0 {
					out.send(pipe.kind, r.ID, buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	}
	go func() {
		// Processes the agent left in its group would hold its pipes open and keep running.
		if waitExited(proc.Pid) {
			_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
			if !r.LeavesNothing {
				killLeftovers(proc.Pid, agentTag(r.ID))
			}
		}
		// A process that left the group with the agent's stdin would otherwise keep the write, and the
		// prompt's copy, waiting until it exits: closing the socket ends the write.
		_ = stdinW.Close()
		// Out of the list before the reap frees the pid: neither a signal request nor killAll may reach the
		// group of its next owner.
		running.Lock()
		delete(running.pids, r.ID)
		running.Unlock()
		state, err := proc.Wait()
		running.Lock()
		delete(running.unreaped, proc.Pid)
		running.Unlock()
		status := map[string]int{"code": -1}
		if err == nil {
			if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				status = map[string]int{"signal": int(ws.Signal())}
			} else {
				status = map[string]int{"code": state.ExitCode()}
			}
		}
		out.sendJSON('X', r.ID, status)
		awaitOutputClosed(&reading, outputInodes, []*os.File{stdoutR, stderrR})
		outputs.Lock()
		delete(outputs.inodes, r.ID)
		outputs.Unlock()
		out.send('C', r.ID, nil)
	}()
}

// protocolVersion is the version of the protocol above, which the worker asks for (`--protocol`) before
// it starts a spawner: a helper built from older sources would take a signal request for a spawn.
const protocolVersion = 2

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--protocol" {
		fmt.Println(protocolVersion)
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: atelier-spawner <parent pid>")
		os.Exit(2)
	}
	parent, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "atelier-spawner: the parent pid must be a number")
		os.Exit(2)
	}
	// SIGTERM rather than SIGKILL when the worker dies, so the spawner can kill the agents' whole process
	// groups before it goes: each agent's own parent-death signal reaches the agent alone, not the
	// processes it started. Any other SIGTERM ends it the same way.
	terminate := make(chan os.Signal, 1)
	signal.Notify(terminate, syscall.SIGTERM)
	go func() {
		<-terminate
		killAll()
		os.Exit(1)
	}()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "atelier-spawner: prctl: %v\n", errno)
		os.Exit(1)
	}
	if err := becomeSubreaper(); err != nil {
		fmt.Fprintf(os.Stderr, "atelier-spawner: prctl(PR_SET_CHILD_SUBREAPER): %v; what agents leave outside their process group and session goes to init\n", err)
	}
	// The orphans it adopts are reaped as they exit, not only when an agent exits.
	reapOnChildSignals()
	// The worker died before the parent-death signal was set: nobody is left to serve.
	if os.Getppid() != parent {
		os.Exit(1)
	}
	// A worker gone makes writes to standard output fail with EPIPE rather than kill the spawner
	// outright, so it can still kill the agents' process groups (frames.send).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	out := &frames{out: os.Stdout}
	// Spawns run one at a time on their own thread; the buffer lets this goroutine read on (and serve
	// signals) while one is under way.
	requests := make(chan request, 4096)
	go func() {
		runtime.LockOSThread()
		for r := range requests {
			start(r, out)
		}
	}()
	in := bufio.NewReaderSize(os.Stdin, 256*1024)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 && err == nil {
			var r request
			if jsonErr := json.Unmarshal(line, &r); jsonErr != nil {
				fmt.Fprintf(os.Stderr, "atelier-spawner: bad request: %v\n", jsonErr)
				killAll()
				os.Exit(2)
			}
			if r.Signal != 0 {
				signalAgent(r.ID, r.Signal)
			} else {
				queueSpawn(r.ID)
				requests <- r
			}
		}
		if err != nil {
			// The worker closed the line (it stops, or it is gone): its agents go with it.
			killAll()
			os.Exit(0)
		}
	}
}
