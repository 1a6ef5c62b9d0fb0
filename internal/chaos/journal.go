package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A journal is the record a server keeps of what its handlers did, one
// line per event, appended to a file of its own per process start:
//
//	S KEY MSGID AT    a handler started on the request with key KEY
//	A KEY MSGID AT    that handler applied it (its effect is this line)
//
// AT is when, in Unix nanoseconds (journals of earlier versions lack it).
//
// Each line is one write(2), so a kill -9 leaves whole lines (the kernel
// keeps what was written), and is fsync'd before the handler goes on, so
// that the file also holds what a machine crash would leave. A handler
// that returned has its A line on disk: the harness counts what was
// applied from the journals alone, whatever happened to the process.
const (
	recStarted = 'S'
	recApplied = 'A'
)

// Journal appends records to a file, fsync'd with group commit: the
// appenders that arrive while an fsync runs share the next one. Safe for
// concurrent use.
type Journal struct {
	f *os.File

	// mu guards written and orders the writes.
	mu      sync.Mutex
	written uint64 // records written so far

	// syncMu serialises fsyncs and guards synced.
	syncMu sync.Mutex
	synced uint64 // records known to be on disk
}

// OpenJournal opens (creating or appending to) the journal at path.
func OpenJournal(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chaos: journal: %w", err)
	}
	return &Journal{f: f}, nil
}

// Append writes the record (kind, key, msgID) and returns once it is on
// disk.
func (j *Journal) Append(kind byte, key, msgID string) error {
	if strings.ContainsAny(key, " \n") || key == "" {
		return fmt.Errorf("chaos: journal: bad key %q", key)
	}
	line := make([]byte, 0, len(key)+len(msgID)+24)
	line = append(line, kind, ' ')
	line = append(line, key...)
	line = append(line, ' ')
	line = append(line, msgID...)
	line = append(line, ' ')
	line = strconv.AppendInt(line, time.Now().UnixNano(), 10)
	line = append(line, '\n')
	j.mu.Lock()
	_, err := j.f.Write(line)
	j.written++
	seq := j.written
	j.mu.Unlock()
	if err != nil {
		return fmt.Errorf("chaos: journal: %w", err)
	}
	return j.syncTo(seq)
}

// syncTo returns once record seq is on disk: an fsync that started after
// it was written covers it and every record written before that fsync.
func (j *Journal) syncTo(seq uint64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if j.synced >= seq {
		return nil
	}
	j.mu.Lock()
	upto := j.written
	j.mu.Unlock()
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("chaos: journal: fsync: %w", err)
	}
	j.synced = upto
	return nil
}

// Close closes the file.
func (j *Journal) Close() error { return j.f.Close() }

// record is one line of a journal.
type record struct {
	kind       byte
	key, msgID string
	at         time.Time // zero when the line has none
}

// readJournal returns the records of the journal at path, in order. A
// missing file has none; a line cut short (it cannot be, but a disk may
// lie) ends the journal.
func readJournal(path string) ([]record, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || len(fields) > 4 || len(fields[0]) != 1 || (fields[0][0] != recStarted && fields[0][0] != recApplied) {
			break
		}
		r := record{kind: fields[0][0], key: fields[1], msgID: fields[2]}
		if len(fields) == 4 {
			ns, err := strconv.ParseInt(fields[3], 10, 64)
			if err != nil {
				break
			}
			r.at = time.Unix(0, ns)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}
