package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// shortGraces shortens the output graces for one test.
func shortGraces(t *testing.T) {
	savedOutput, savedKill, savedDrain := outputGrace, killGrace, drainLimit
	outputGrace, killGrace, drainLimit = 50*time.Millisecond, 50*time.Millisecond, time.Second
	t.Cleanup(func() { outputGrace, killGrace, drainLimit = savedOutput, savedKill, savedDrain })
}

// startHolder starts a process in a session of its own (a daemon) that holds `output` open.
func startHolder(t *testing.T, output *os.File) *exec.Cmd {
	t.Helper()
	daemon := exec.Command("sleep", "60")
	daemon.Stdout = output
	daemon.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	return daemon
}

// assertKilled waits for the process and fails unless SIGKILL ended it.
func assertKilled(t *testing.T, daemon *exec.Cmd) {
	t.Helper()
	state, err := daemon.Process.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the process holding the output ended with %v, not killed", state)
	}
}

// An agent's last output, left in its socket behind a reader that waits for a busy worker longer than
// the graces, is read to its end: nothing holds the output, so nothing is closed early.
func TestOutputBehindASlowReaderIsKept(t *testing.T) {
	shortGraces(t)
	mine, theirs, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	inodes := socketInodes(theirs)
	payload := bytes.Repeat([]byte("result "), 4096)
	if _, err := theirs.Write(payload); err != nil {
		t.Fatal(err)
	}
	_ = theirs.Close()

	var reading sync.WaitGroup
	reading.Add(1)
	var got []byte
	go func() {
		defer reading.Done()
		// The worker takes nothing for four times both graces, as a reader blocked on it would.
		time.Sleep(8 * outputGrace)
		got, _ = io.ReadAll(mine)
	}()
	awaitOutputClosed(&reading, inodes, []*os.File{mine})
	if !bytes.Equal(got, payload) {
		t.Fatalf("read %d bytes of the %d the agent wrote", len(got), len(payload))
	}
}

// A process of a session of its own that holds the output open is killed, and the output closes.
func TestAProcessHoldingTheOutputIsKilled(t *testing.T) {
	shortGraces(t)
	mine, theirs, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	daemon := startHolder(t, theirs)
	inodes := socketInodes(theirs)
	_ = theirs.Close()

	var reading sync.WaitGroup
	reading.Add(1)
	go func() {
		defer reading.Done()
		_, _ = io.ReadAll(mine)
	}()
	awaitOutputClosed(&reading, inodes, []*os.File{mine})
	assertKilled(t, daemon)
}

// reopenAfterKillAll lets spawns start again after a test's killAll.
func reopenAfterKillAll(t *testing.T) {
	t.Cleanup(func() {
		running.Lock()
		running.closing = false
		running.Unlock()
	})
}

// A spawner that closes kills the processes that left its agents' groups and still hold their output.
func TestKillAllKillsProcessesHoldingAnAgentsOutput(t *testing.T) {
	reopenAfterKillAll(t)
	_, theirs, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	daemon := startHolder(t, theirs)
	outputs.Lock()
	outputs.inodes[1] = socketInodes(theirs)
	outputs.Unlock()
	t.Cleanup(func() {
		outputs.Lock()
		delete(outputs.inodes, 1)
		outputs.Unlock()
	})
	_ = theirs.Close()

	killAll()
	assertKilled(t, daemon)
}

// Output nobody is seen to hold, which a reader never finishes, is closed after drainLimit: the run ends.
func TestOutputNeverReadToItsEndIsClosedInTheEnd(t *testing.T) {
	shortGraces(t)
	mine, theirs, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close() // held open here, where /proc shows it: as by a holder it cannot see
	var reading sync.WaitGroup
	reading.Add(1)
	go func() {
		defer reading.Done()
		_, _ = io.ReadAll(mine) // ends once the output is closed on this side
	}()
	awaitOutputClosed(&reading, map[string]bool{}, []*os.File{mine})
}

// A prompt file holds its content from its start, is read-only, and no directory names it, nor is the
// directory it was written in left behind.
func TestUnlinkedFileHoldsItsContentUnderNoName(t *testing.T) {
	f, err := unlinkedFile(t.TempDir(), "the prompt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	path, deleted := strings.CutSuffix(target, " (deleted)")
	if !deleted {
		t.Fatalf("the file is still named %s", target)
	}
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Fatalf("its directory %s is left: %v", filepath.Dir(path), err)
	}
	got, err := io.ReadAll(f)
	if err != nil || string(got) != "the prompt" {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("the file is writable")
	}
}

// lockedBuffer collects the frames a test's requests write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// frame is one whole frame written.
type frame struct {
	kind    byte
	payload []byte
}

// frames are the whole frames written so far.
func (b *lockedBuffer) frames() []frame {
	b.mu.Lock()
	defer b.mu.Unlock()
	var all []frame
	data := b.buf.Bytes()
	for len(data) >= 9 {
		length := int(binary.BigEndian.Uint32(data[5:9]))
		if len(data) < 9+length {
			break
		}
		all = append(all, frame{kind: data[0], payload: bytes.Clone(data[9 : 9+length])})
		data = data[9+length:]
	}
	return all
}

// frameKinds are the kinds of the whole frames written so far, and the payload of the last 'X'.
func (b *lockedBuffer) frameKinds() (kinds string, exit string) {
	for _, f := range b.frames() {
		kinds += string(f.kind)
		if f.kind == 'X' {
			exit = string(f.payload)
		}
	}
	return kinds, exit
}

// A signal request reaches a running agent's process group; once the spawner has reaped the agent (its
// pid, the group's id, may be another process's by then) one is not sent.
func TestSignalsReachOnlyAnAgentNotYetReaped(t *testing.T) {
	// As the spawner's own requests goroutine: the agent's parent-death signal is this thread's.
	runtime.LockOSThread()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	buf := &lockedBuffer{}
	const id = 7001
	start(request{ID: id, Path: sleep, Args: []string{"60"}}, &frames{out: buf})
	if !signalAgent(id, syscall.SIGTERM) {
		t.Fatal("the running agent was not signalled")
	}
	if exit := waitForClose(t, buf); exit != `{"signal":15}` {
		t.Fatalf("the agent ended with %s, not by the signal", exit)
	}
	if signalAgent(id, syscall.SIGTERM) {
		t.Fatal("a signal was sent for an agent already reaped")
	}
	if signalAgent(id+1, syscall.SIGTERM) {
		t.Fatal("a signal was sent for a request that started nothing")
	}
}

// waitForClose waits until the frames written end with a close, and answers the exit's payload.
func waitForClose(t *testing.T, buf *lockedBuffer) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	kinds, exit := buf.frameKinds()
	for !strings.HasSuffix(kinds, "C") {
		if time.Now().After(deadline) {
			t.Fatalf("the agent's run did not close: frames %q", kinds)
		}
		time.Sleep(10 * time.Millisecond)
		kinds, exit = buf.frameKinds()
	}
	return exit
}

// A signal read while its agent's spawn request waits behind another spawn is kept, and sent as soon
// as the agent has started; the stronger of two is kept.
func TestASignalForAQueuedSpawnIsSentOnceItsAgentStarts(t *testing.T) {
	runtime.LockOSThread()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	buf := &lockedBuffer{}
	const id = 7101
	queueSpawn(id)
	if !signalAgent(id, syscall.SIGKILL) || !signalAgent(id, syscall.SIGTERM) {
		t.Fatal("the signals for a queued spawn were not kept")
	}
	start(request{ID: id, Path: sleep, Args: []string{"60"}}, &frames{out: buf})
	if exit := waitForClose(t, buf); exit != `{"signal":9}` {
		t.Fatalf("the agent ended with %s, not by the kept SIGKILL", exit)
	}
	if signalAgent(id, syscall.SIGTERM) {
		t.Fatal("a signal was kept or sent for a spawn already served")
	}
}

// killAll waits for a spawn under way to enter its agent, and kills it too; no spawn starts after.
func TestKillAllKillsAnAgentWhoseSpawnIsUnderWay(t *testing.T) {
	reopenAfterKillAll(t)
	agent := exec.Command("sleep", "60")
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	const id = 7201
	queueSpawn(id)
	if !beginStart() {
		t.Fatal("a spawn was refused before killAll")
	}
	done := make(chan struct{})
	go func() {
		killAll()
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		running.Lock()
		closing := running.closing
		running.Unlock()
		if closing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("killAll did not begin")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-done:
		t.Fatal("killAll ended before the spawn under way entered its agent")
	default:
	}
	endStart(id, agent.Process.Pid)
	<-done
	assertKilled(t, agent)
	if beginStart() {
		t.Fatal("a spawn may start after killAll")
	}
}
