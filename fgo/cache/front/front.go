// Command fgo-cachefront is the GOCACHEPROG that fgo build hands to go build.
//
// go starts its cache helper for every build and waits for it: a Python
// interpreter answering a warm build's hundreds of gets cost a no-op build of
// gin 0.15 s, as much as go's whole no-op. This small Go program answers what
// needs no judgement: gets of entries in the head's local tier that a head
// produced, whole (a stamp vouches for the body's file, or the body hashes to
// its output ID, and is stamped then, as the helper does). A worker's entry
// too, when fgo build knows the revocations the tier keeps are all the
// cluster's ($FGO_CACHE_REVOKED: it lists them, checked, and the front refuses
// what they cover), or checks its hits later against the cluster's
// ($FGO_CACHE_CHECK_AFTER: each is logged there first, as the helper does). At
// the first request it cannot answer (a miss but the one below, a put it
// cannot store, a worker's entry with neither, an entry a revocation covers, a
// body that does not hash to its output ID, a trim that is due), it hands go's
// stream to fgo's Python helper by exec: the same process, the same pipes, and
// the bytes it read ahead passed on, so the helper serves on as if it had been
// there from the start. An edit's rebuild needs no helper at all: the first
// miss after hits it answers, as the helper would (which looks at the cluster
// tier only from its first miss on), and go's puts it stores in the local tier
// and lists for fgo build ($FGO_CACHE_PENDING) as the helper does.
//
// Usage: fgo-cachefront SETTINGS HELPER [ARGS...]; SETTINGS is JSON (root: the
// local tier; size: its limit in bytes; counters: the helper's counters at
// zero, written to $FGO_CACHE_STATS at a close this program answers).
// The helper is exec'd with one more argument, the handoff (JSON: the counts
// and puts so far and the unserved bytes, base64), and $FGO_CACHE_FRONT naming
// this program, which the helper starts again at its close as
// "fgo-cachefront -stamp ROOT LIST" (see stampLater).
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// These three mirror fgo.cache.local (RACY_S, TRIM_EVERY_S) and
// fgo.cache.trust (HEAD); tests/test_cache.py checks that they agree.
const (
	racyNanos   = 2_000_000_000
	trimEvery   = 3600.0
	headProduct = "head"
)

type settings struct {
	Root     string         `json:"root"`
	Size     int64          `json:"size"`
	Counters map[string]any `json:"counters"`
}

type request struct {
	ID       int64
	Command  string
	ActionID []byte
	OutputID []byte
	BodySize int64
}

type front struct {
	settings
	helper     []string
	in         *bufio.Reader
	answered   int      // gets answered, each a local hit
	checkAfter *os.File // the log of workers' entries answered, for the head's check
	logged     int      // entries logged there
	revoked    *revoked // the tier's revocations, all the cluster's, as fgo build checked them
	misses     int      // gets answered with a miss (at most one: see main)
	pending    *os.File // $FGO_CACHE_PENDING, where go's puts are listed for fgo build
	written    []string // the actions put here
	added      int64    // and their bytes
	reused     int      // puts of an entry the tier held already
	stamping   int      // entries left to the stamper at close
}

// revoked is what $FGO_CACHE_REVOKED lists: "e <action> <output>" and
// "p <producer, escaped>" lines (fgo.cache.session.SharedCache.check_revocations).
type revoked struct {
	entries   map[string]bool // action + " " + output
	producers map[string]bool
}

func readRevoked(path string) *revoked {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	r := &revoked{entries: map[string]bool{}, producers: map[string]bool{}}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "e":
			r.entries[f[1]+" "+f[2]] = true
		case len(f) == 2 && f[0] == "p":
			p, err := url.PathUnescape(f[1])
			if err != nil {
				return nil // unreadable: the helper applies them
			}
			r.producers[p] = true
		case len(f) != 0:
			return nil
		}
	}
	return r
}

// covers is fgo.cache.trust.Revoked.covers.
func (r *revoked) covers(action string, e entry) bool {
	if r.entries[action+" "+e.output] {
		return true
	}
	for _, p := range strings.Split(e.producer, "+") {
		if p != "" && r.producers[p] {
			return true
		}
	}
	return false
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "-stamp" {
		stampLater(os.Args[2], os.Args[3])
		return
	}
	if len(os.Args) < 3 {
		fail("usage: fgo-cachefront SETTINGS HELPER [ARGS...]")
	}
	f := &front{helper: os.Args[2:], in: bufio.NewReaderSize(os.Stdin, 16<<10)}
	if err := json.Unmarshal([]byte(os.Args[1]), &f.settings); err != nil || f.Root == "" {
		fail(fmt.Sprintf("bad settings from fgo build: %q", os.Args[1]))
	}
	if path := os.Getenv("FGO_CACHE_REVOKED"); path != "" {
		f.revoked = readRevoked(path)
	}
	if f.revoked == nil && revocationsKept(f.Root) { // only the helper can verify them
		f.exec(nil)
	}
	if path := os.Getenv("FGO_CACHE_CHECK_AFTER"); path != "" && f.revoked == nil {
		// the helper opens it again: this one closes at the exec
		f.checkAfter, _ = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	}
	if path := os.Getenv("FGO_CACHE_PENDING"); path != "" {
		// the helper opens it again: this one closes at the exec
		f.pending, _ = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	}
	f.send(`{"ID":0,"KnownCommands":["get","put","close"]}`)
	for {
		line, err := f.next()
		if err != nil { // go went away without a close: the helper closes as it would
			f.handOver(line)
		}
		var r request
		if json.Unmarshal(line, &r) != nil {
			f.handOver(line)
		}
		switch {
		case r.Command == "get" && r.BodySize == 0:
			if resp, ok := f.get(r); ok {
				f.send(resp)
				continue
			}
			if f.answered > 0 && f.misses == 0 && f.absent(r) {
				// the helper answers the first miss after hits at once too (its cluster
				// tier is not ready before it has been asked for)
				f.misses++
				f.send(fmt.Sprintf(`{"ID":%d,"Miss":true}`, r.ID))
				continue
			}
		case r.Command == "put":
			resp, body, ok := f.put(r)
			if ok {
				f.send(resp)
				continue
			}
			line = append(line, body...) // the helper reads the body it was sent
		case r.Command == "close" && r.BodySize == 0:
			if f.closeAlone() {
				f.send(fmt.Sprintf(`{"ID":%d}`, r.ID))
				os.Exit(0)
			}
		}
		f.handOver(line)
	}
}

// put stores R's body (on the next line, base64 in JSON, as go sends it) in the
// local tier as fgo.cache.server.Server.put does for go's own puts, and lists
// it in $FGO_CACHE_PENDING; false, with the body line read, leaves it to the
// helper (no list to write, a body that is not R's output, a disk that refuses).
func (f *front) put(r request) (string, []byte, bool) {
	var line []byte
	body := []byte{}
	if r.BodySize > 0 {
		var err error
		if line, err = f.next(); err != nil ||
			json.Unmarshal(line, &body) != nil || int64(len(body)) != r.BodySize {
			return "", line, false
		}
	}
	sum := sha256.Sum256(body)
	if f.pending == nil || len(r.ActionID) != 32 || !bytes.Equal(sum[:], r.OutputID) {
		return "", line, false
	}
	action, output := hex.EncodeToString(r.ActionID), hex.EncodeToString(r.OutputID)
	index, path := entryPaths(f.Root, action)
	var st syscall.Stat_t
	data, err := os.ReadFile(index)
	e, ok := parseIndex(string(data))
	if err == nil && ok && e.output == output && e.size == r.BodySize &&
		syscall.Stat(path, &st) == nil && st.Size == e.size {
		f.reused++ // go sent again what the tier holds
	} else {
		text := fmt.Sprintf("%s %d %.3f 0.000\n", output, len(body),
			float64(time.Now().UnixNano())/1e9)
		if os.MkdirAll(filepath.Dir(path), 0o777) != nil || writeFile(path, body) != nil {
			return "", line, false
		}
		if writeFile(index, []byte(text)) != nil {
			os.Remove(path)
			return "", line, false
		}
	}
	listed, _ := json.Marshal(map[string]any{"action": action, "output": output, "size": len(body)})
	if _, err := f.pending.Write(append(listed, '\n')); err != nil {
		return "", line, false // (the helper puts it again: reused)
	}
	f.written = append(f.written, action)
	f.added += r.BodySize
	out, _ := json.Marshal(map[string]any{"ID": r.ID, "DiskPath": path})
	return string(out), line, true
}

// next is go's next request line, blank lines skipped (go ends each request
// with one); at the end of input, what was read of a last line and the error.
func (f *front) next() ([]byte, error) {
	for {
		line, err := f.in.ReadBytes('\n')
		if err != nil || len(bytes.TrimSpace(line)) > 0 {
			return line, err
		}
	}
}

// absent: the local tier has no entry for R's action (no index file).
func (f *front) absent(r request) bool {
	if len(r.ActionID) != 32 {
		return false
	}
	action := hex.EncodeToString(r.ActionID)
	index, _ := entryPaths(f.Root, action)
	_, err := os.Stat(index)
	return os.IsNotExist(err)
}

// get answers R from the local tier if the entry is a head's own, whole and
// stamped; false leaves it to the helper (which hashes, fetches or refuses).
func (f *front) get(r request) (string, bool) {
	if len(r.ActionID) != 32 {
		return "", false
	}
	action := hex.EncodeToString(r.ActionID)
	index, body := entryPaths(f.Root, action)
	data, err := os.ReadFile(index)
	if err != nil {
		return "", false
	}
	e, ok := parseIndex(string(data))
	worker := ok && !headsOwn(e.producer)
	if !ok || worker && f.revoked == nil && f.checkAfter == nil ||
		f.revoked != nil && f.revoked.covers(action, e) { // the helper removes it
		return "", false
	}
	var st syscall.Stat_t
	if syscall.Stat(body, &st) != nil || st.Size != e.size {
		return "", false
	}
	output, err := hex.DecodeString(e.output)
	if err != nil || len(output) != 32 {
		return "", false
	}
	if !stampVouches(e.stamp, &st) && !hashAndStamp(index, body, string(data), output, &st) {
		return "", false
	}
	if worker && f.revoked == nil && !f.log(action, e) {
		return "", false
	}
	now := time.Now()
	os.Chtimes(index, now, now) // its last use (the tier's LRU); best effort, as the helper
	f.answered++
	resp := map[string]any{"ID": r.ID, "OutputID": output, "DiskPath": body,
		"Time": time.UnixMicro(int64(math.Round(e.putTime * 1e6))).UTC()}
	if e.size != 0 {
		resp["Size"] = e.size
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return "", false
	}
	return string(out), true
}

// log records a worker's entry E of ACTION for the head's check before go has
// it: fgo.cache.trust.used_line. False when it cannot (then the helper answers).
func (f *front) log(action string, e entry) bool {
	line := action + " " + e.output + " " + url.PathEscape(e.producer) + "\n"
	if _, err := f.checkAfter.WriteString(line); err != nil {
		return false
	}
	f.logged++
	return true
}

type entry struct {
	output   string
	size     int64
	putTime  float64
	producer string
	stamp    string
}

// parseIndex reads an index file as fgo.cache.local._entry does: "<output>
// <size> <put time> [<seconds>] [p=<producer> c=.. s=..] [v=<stamp>]".
func parseIndex(text string) (entry, bool) {
	fields := strings.Fields(text)
	if len(fields) < 3 {
		return entry{}, false
	}
	size, err1 := strconv.ParseInt(fields[1], 10, 64)
	put, err2 := strconv.ParseFloat(fields[2], 64)
	if err1 != nil || err2 != nil {
		return entry{}, false
	}
	e := entry{output: fields[0], size: size, putTime: put}
	for _, tag := range fields[3:] {
		k, v, ok := strings.Cut(tag, "=")
		switch {
		case !ok:
		case k == "p":
			p, err := url.PathUnescape(v)
			if err != nil {
				return entry{}, false
			}
			e.producer = p
		case k == "v":
			e.stamp = v
		}
	}
	return e, true
}

// headsOwn: no worker took part in computing it (fgo.cache.trust.from_workers).
func headsOwn(producer string) bool {
	for _, p := range strings.Split(producer, "+") {
		if p != "" && p != headProduct {
			return false
		}
	}
	return true
}

// stampVouches is fgo.cache.local.stamp_vouches: the body is the file a get
// hashed (same inode, size and times), stamped long enough after its change.
func stampVouches(stamp string, st *syscall.Stat_t) bool {
	parts := strings.Split(stamp, ".")
	if len(parts) != 5 {
		return false
	}
	var n [5]int64
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return false
		}
		n[i] = v
	}
	mtime := st.Mtim.Sec*1e9 + st.Mtim.Nsec
	ctime := st.Ctim.Sec*1e9 + st.Ctim.Nsec
	return uint64(n[0]) == st.Ino && n[1] == st.Size && n[2] == mtime && n[3] == ctime &&
		n[4]-ctime >= racyNanos
}

// hashAndStamp is what fgo.cache.local.DiskTier.get does for a body no stamp
// vouches for (the first get after the build that put it): hash it; when it is
// OUTPUT, record a stamp of ST in its index (INDEX, its text TEXT), unless the
// file changed too recently to tell. False when it is not OUTPUT (or cannot be
// read): then the helper hashes it again and removes the entry.
func hashAndStamp(index, body, text string, output []byte, st *syscall.Stat_t) bool {
	file, err := os.Open(body)
	if err != nil {
		return false
	}
	h := sha256.New()
	_, err = io.Copy(h, file)
	file.Close()
	if err != nil || !bytes.Equal(h.Sum(nil), output) {
		return false
	}
	now := time.Now().UnixNano()
	ctime := st.Ctim.Sec*1e9 + st.Ctim.Nsec
	if now-ctime < racyNanos {
		return true // a later get hashes it again
	}
	stamp := fmt.Sprintf("v=%d.%d.%d.%d.%d", st.Ino, st.Size, st.Mtim.Sec*1e9+st.Mtim.Nsec,
		ctime, now)
	fields := []string{}
	for _, field := range strings.Fields(text) {
		if !strings.HasPrefix(field, "v=") {
			fields = append(fields, field)
		}
	}
	// not over an index another process rewrote or removed while the body was hashed
	// (a put of other bytes, a revocation's removal)
	if again, err := os.ReadFile(index); err == nil && string(again) == text {
		writeFile(index, []byte(strings.Join(append(fields, stamp), " ")+"\n")) // best effort
	}
	return true
}

// stampLater is "fgo-cachefront -stamp ROOT LIST", which this program or the
// helper starts, detached, at the close of a build that wrote entries to the local tier ROOT
// (their action IDs in the file LIST, removed once read): once each body is
// racyNanos old, it hashes it and stamps it as a get would. Else the first
// rebuild after a build does it on go's path (gin: 506 bodies, 140 MB). At the
// lowest priority, and best effort: what it leaves, the next get hashes.
func stampLater(root, list string) {
	data, err := os.ReadFile(list)
	os.Remove(list)
	if err != nil {
		return
	}
	syscall.Setpriority(syscall.PRIO_PROCESS, 0, 19)
	actions := strings.Fields(string(data))
	// go removes its work files after its cache's close: a body linked to one
	// (fgo.cache.outputs) changes its ctime then, so the first wait is a whole one
	for round := 0; round < 3 && len(actions) > 0; round++ {
		time.Sleep(racyNanos + 500*time.Millisecond)
		fresh := actions[:0]
		for _, action := range actions {
			if stampOne(root, action) {
				fresh = append(fresh, action)
			}
		}
		actions = fresh
	}
}

// startStamper starts this program again, detached, to stamp what was put
// here (stampLater), as fgo.cache.front.stamp_later does for the helper; how
// many entries it was given (0: none, or it could not start).
func (f *front) startStamper() int {
	if len(f.written) == 0 {
		return 0
	}
	self, err := os.Executable()
	dir := filepath.Join(f.Root, "stamping")
	if err != nil || os.MkdirAll(dir, 0o777) != nil {
		return 0
	}
	list, err := os.CreateTemp(dir, "list-")
	if err != nil {
		return 0
	}
	_, err = list.WriteString(strings.Join(f.written, "\n"))
	list.Close()
	cmd := exec.Command(self, "-stamp", f.Root, list.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // (stdio: /dev/null)
	if err != nil || cmd.Start() != nil {
		os.Remove(list.Name())
		return 0
	}
	cmd.Process.Release()
	return len(f.written)
}

// stampOne hashes and stamps ACTION's body in ROOT unless a stamp vouches for
// it already; true when its file changed too recently to stamp yet. (The
// index's mtime, the entry's last use, moves to seconds after its put.)
func stampOne(root, action string) bool {
	if _, err := hex.DecodeString(action); err != nil || len(action) != 64 {
		return false
	}
	index, body := entryPaths(root, action)
	var st syscall.Stat_t
	data, err := os.ReadFile(index)
	if err != nil {
		return false
	}
	e, ok := parseIndex(string(data))
	output, err := hex.DecodeString(e.output)
	if !ok || err != nil || len(output) != 32 || syscall.Stat(body, &st) != nil ||
		st.Size != e.size || stampVouches(e.stamp, &st) {
		return false
	}
	if time.Now().UnixNano()-(st.Ctim.Sec*1e9+st.Ctim.Nsec) < racyNanos {
		return true
	}
	hashAndStamp(index, body, string(data), output, &st) // a wrong body: the next get's
	return false
}

// entryPaths is fgo.cache.local.DiskTier._paths: ACTION's index and body in
// the tier ROOT.
func entryPaths(root, action string) (index, body string) {
	dir := filepath.Join(root, action[:2])
	return filepath.Join(dir, action+"-a"), filepath.Join(dir, action+"-d")
}

// writeFile is fgo.fileio.write_atomically: DATA at DEST, whole or not at all
// (a stamp it cannot write, on a read-only tier, is just taken again later).
func writeFile(dest string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".in-")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dest)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// revocationsKept: the tier keeps revocations (ROOT/revoked not empty).
func revocationsKept(root string) bool {
	d, err := os.Open(filepath.Join(root, "revoked"))
	if err != nil {
		return false
	}
	defer d.Close()
	names, _ := d.Readdirnames(1)
	return len(names) > 0
}

// closeAlone ends a build whose every request this program answered: its
// counters written, unless the tier's trim is due (fgo.cache.local.trim_due,
// with nothing added: then the helper closes, and trims).
func (f *front) closeAlone() bool {
	data, err := os.ReadFile(filepath.Join(f.Root, "trimmed"))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return false
	}
	when, err1 := strconv.ParseFloat(fields[0], 64)
	held, err2 := strconv.ParseInt(fields[1], 10, 64)
	now := float64(time.Now().UnixNano()) / 1e9
	if err1 != nil || err2 != nil || now-when >= trimEvery || held+f.added > f.Size {
		return false
	}
	if f.added > 0 { // counted as fgo.cache.local.DiskTier.trim_if_due does
		record := fmt.Sprintf("%.3f %d\n", when, held+f.added)
		writeFile(filepath.Join(f.Root, "trimmed"), []byte(record)) // best effort, as the helper
	}
	f.stamping = f.startStamper()
	if path := os.Getenv("FGO_CACHE_STATS"); path != "" && f.Counters != nil {
		counters := f.counts()
		if out, err := json.Marshal(counters); err == nil {
			os.WriteFile(path, out, 0o666) // as the helper: a counter lost is no error
		}
	}
	return true
}

func (f *front) counts() map[string]any {
	c := make(map[string]any, len(f.Counters)+1)
	for k, v := range f.Counters {
		c[k] = v
	}
	c["gets"], c["local_hits"], c["front"] = f.answered+f.misses, f.answered, f.answered
	c["checked_after"] = f.logged
	c["misses"], c["front_misses"] = f.misses, f.misses
	c["puts"], c["front_puts"], c["reused"] = len(f.written), len(f.written), f.reused
	c["stamp_later"] = f.stamping
	return c
}

func (f *front) send(line string) {
	if _, err := io.WriteString(os.Stdout, line+"\n"); err != nil {
		os.Exit(1) // go is gone
	}
}

// handOver execs the helper to serve LINE, the bytes read ahead and the rest.
func (f *front) handOver(line []byte) {
	ahead, _ := f.in.Peek(f.in.Buffered())
	unserved := append(append([]byte{}, line...), ahead...)
	handoff, err := json.Marshal(map[string]any{
		"gets": f.answered + f.misses, "local_hits": f.answered, "front": f.answered,
		"checked_after": f.logged, "misses": f.misses, "written": f.written,
		"added": f.added, "reused": f.reused, "unserved": unserved})
	if err != nil {
		fail(err.Error())
	}
	f.exec(handoff)
}

func (f *front) exec(handoff []byte) {
	argv := append([]string{}, f.helper...)
	if handoff != nil {
		argv = append(argv, string(handoff))
	}
	if self, err := os.Executable(); err == nil {
		os.Setenv("FGO_CACHE_FRONT", self) // the helper's stamper (stampLater)
	}
	err := syscall.Exec(f.helper[0], argv, os.Environ())
	fail(fmt.Sprintf("cannot start %s: %v", f.helper[0], err))
}

func fail(msg string) {
	fmt.Fprintf(os.Stderr, "fgo cacheprog: %s\n", msg)
	os.Exit(2)
}
