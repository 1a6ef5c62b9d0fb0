// Package store keeps what a relay node must not lose when its process
// ends, in a data directory (relay.WithDataDir), using bbolt, an embedded
// key/value store: no server to run.
//
//   - The ledger of requests with acks a server handled (msg_id, when, and
//     the answer, up to a byte bound), so that a request resent to the
//     server's next process is answered again instead of run again
//     (actors.Ledger).
//   - The outbox of casts with acks not acknowledged yet, so that the
//     sender's next process sends them again (durable casts).
//
// A Store is one file, DIR/relay.db, which one process at a time may open
// (bbolt locks it; a second Open waits up to a second and then fails). Its
// writes are durable when they return (fsync'd), and concurrent writes
// share one transaction (bbolt's Batch, with no delay: the writes that
// come while one commits share the next), so that many handlers finishing
// together cost one fsync. Safe for concurrent use.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/relay-dev/relay/actors"
	"github.com/relay-dev/relay/envelope"
)

// Buckets of the file.
var (
	bucketDone   = []byte("ledger")     // msg_id -> at (8) | flags (1) | answer
	bucketByTime = []byte("ledger-age") // at (8) | msg_id -> nil
	bucketOutbox = []byte("outbox")     // msg_id -> deadline (8) | n (2) | n × (len (2) | addr) | record
)

// flagEvicted marks a ledger entry whose answer was not kept.
const flagEvicted = 1

// Store is a node's data directory.
type Store struct {
	db       *bolt.DB
	ttl      time.Duration
	maxBytes int

	// mu guards the fields below.
	mu      sync.Mutex
	running map[envelope.MsgID]bool // handlers running now (not persisted)
	bytes   int                     // answers kept in the ledger

	deletes chan envelope.MsgID // casts acknowledged, deleted by the sweeper
	stop    chan struct{}
	done    chan struct{}
}

// Open opens (or makes) the store in dir. The ledger remembers msg_ids for
// ttl and keeps answers up to maxBytes in all (0: no bound).
func Open(dir string, ttl time.Duration, maxBytes int) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "relay.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store: %s is in use by another process (one node per data directory)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// A write waits for no other to join its transaction (bbolt's default
	// waits 10 ms): the writes that come while one commits share the
	// next. A handler's effect and its record in the ledger are two
	// writes; the shorter the gap, the rarer a crash in it that makes a
	// resend run the handler again.
	db.MaxBatchDelay = 0
	s := &Store{db: db, ttl: ttl, maxBytes: maxBytes, running: make(map[envelope.MsgID]bool),
		deletes: make(chan envelope.MsgID, 4096), stop: make(chan struct{}), done: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketDone, bucketByTime, bucketOutbox} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketDone).ForEach(func(_, v []byte) error {
			if len(v) > 9 {
				s.bytes += len(v) - 9
			}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s.expire(time.Now())
	go s.sweep() // ended by Close
	return s, nil
}

// Close stops the store's sweeps and closes the file.
func (s *Store) Close() error {
	close(s.stop)
	<-s.done
	return s.db.Close()
}

// Path returns the file of the store.
func (s *Store) Path() string { return s.db.Path() }

// Begin implements actors.Ledger.
func (s *Store) Begin(id envelope.MsgID) (actors.State, []byte, bool) {
	var (
		state   = actors.New
		reply   []byte
		evicted bool
	)
	_ = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDone).Get(id[:])
		if v == nil || len(v) < 9 {
			return nil
		}
		state = actors.Done
		evicted = v[8]&flagEvicted != 0
		if len(v) > 9 {
			reply = append([]byte(nil), v[9:]...)
		}
		return nil
	})
	if state == actors.Done {
		return state, reply, evicted
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[id] {
		return actors.Running, nil, false
	}
	s.running[id] = true
	return actors.New, nil, false
}

// Done implements actors.Ledger: it returns once the entry is on disk.
func (s *Store) Done(id envelope.MsgID, reply []byte) error {
	now := time.Now()
	s.mu.Lock()
	evicted := byte(0)
	if reply != nil && s.maxBytes > 0 && s.bytes+len(reply) > s.maxBytes {
		reply, evicted = nil, flagEvicted
	}
	s.bytes += len(reply)
	s.mu.Unlock()
	v := make([]byte, 9+len(reply))
	binary.BigEndian.PutUint64(v, uint64(now.UnixNano()))
	v[8] = evicted
	copy(v[9:], reply)
	err := s.db.Batch(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketDone).Put(id[:], v); err != nil {
			return err
		}
		return tx.Bucket(bucketByTime).Put(ageKey(now, id), nil)
	})
	s.mu.Lock()
	delete(s.running, id)
	if err != nil {
		s.bytes -= len(reply)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("store: record %s handled: %w", id, err)
	}
	return nil
}

// Forget implements actors.Ledger.
func (s *Store) Forget(id envelope.MsgID) {
	s.mu.Lock()
	delete(s.running, id)
	s.mu.Unlock()
}

// Bytes returns the bytes of the answers kept.
func (s *Store) Bytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

func ageKey(at time.Time, id envelope.MsgID) []byte {
	k := make([]byte, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	copy(k[8:], id[:])
	return k
}

// sweep expires old ledger entries every tenth of the TTL (at most every
// minute). Runs in its own goroutine until Close.
func (s *Store) sweep() {
	defer close(s.done)
	every := min(max(s.ttl/10, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.deleteCasts(nil)
			return
		case now := <-t.C:
			s.expire(now)
		case id := <-s.deletes:
			s.deleteCasts([]envelope.MsgID{id})
		}
	}
}

// deleteCasts deletes ids and whatever else is queued for deletion, in one
// transaction.
func (s *Store) deleteCasts(ids []envelope.MsgID) {
	for more := true; more; {
		select {
		case id := <-s.deletes:
			ids = append(ids, id)
		default:
			more = false
		}
	}
	if len(ids) == 0 {
		return
	}
	_ = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		for _, id := range ids {
			if err := b.Delete(id[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// expire deletes the ledger entries older than the TTL.
func (s *Store) expire(now time.Time) {
	limit := uint64(now.Add(-s.ttl).UnixNano())
	freed := 0
	_ = s.db.Update(func(tx *bolt.Tx) error {
		done, age := tx.Bucket(bucketDone), tx.Bucket(bucketByTime)
		c := age.Cursor()
		var old [][]byte
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) < limit; k, _ = c.Next() {
			old = append(old, append([]byte(nil), k...))
		}
		for _, k := range old {
			id := k[8:]
			if v := done.Get(id); len(v) > 9 {
				freed += len(v) - 9
			}
			if err := done.Delete(id); err != nil {
				return err
			}
			if err := age.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	s.mu.Lock()
	s.bytes -= freed
	s.mu.Unlock()
}

// Cast is a cast with acks the outbox keeps until it is acknowledged.
type Cast struct {
	ID       envelope.MsgID
	Deadline time.Time
	Addrs    []string // where it is sent, in turn
	Rec      []byte   // its record
}

// SaveCast writes c to the outbox; it returns once c is on disk.
func (s *Store) SaveCast(c Cast) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(c.Deadline.UnixNano()))
	v = binary.BigEndian.AppendUint16(v, uint16(len(c.Addrs)))
	for _, a := range c.Addrs {
		v = binary.BigEndian.AppendUint16(v, uint16(len(a)))
		v = append(v, a...)
	}
	v = append(v, c.Rec...)
	err := s.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).Put(c.ID[:], v) })
	if err != nil {
		return fmt.Errorf("store: save cast %s: %w", c.ID, err)
	}
	return nil
}

// DeleteCast removes the cast with id from the outbox (acknowledged, or
// past its deadline).
func (s *Store) DeleteCast(id envelope.MsgID) error {
	return s.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).Delete(id[:]) })
}

// DeleteCastLater removes the cast with id from the outbox soon, without
// waiting: for a socket loop that must not block. A cast whose deletion is
// lost (the queue full, the process gone) is sent once more by the next
// process, and its server's ledger knows it.
func (s *Store) DeleteCastLater(id envelope.MsgID) {
	select {
	case s.deletes <- id:
	default:
	}
}

// Casts returns the casts in the outbox whose deadline is after now, and
// deletes the others.
func (s *Store) Casts(now time.Time) ([]Cast, error) {
	var out []Cast
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		var expired [][]byte
		err := b.ForEach(func(k, v []byte) error {
			c, ok := decodeCast(k, v)
			if !ok || !c.Deadline.After(now) {
				expired = append(expired, append([]byte(nil), k...))
				return nil
			}
			out = append(out, c)
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func decodeCast(k, v []byte) (Cast, bool) {
	var c Cast
	if len(k) != len(c.ID) || len(v) < 10 {
		return c, false
	}
	copy(c.ID[:], k)
	c.Deadline = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
	n := int(binary.BigEndian.Uint16(v[8:]))
	off := 10
	for range n {
		if len(v)-off < 2 {
			return c, false
		}
		l := int(binary.BigEndian.Uint16(v[off:]))
		off += 2
		if len(v)-off < l {
			return c, false
		}
		c.Addrs = append(c.Addrs, string(v[off:off+l]))
		off += l
	}
	c.Rec = append([]byte(nil), v[off:]...)
	return c, len(c.Addrs) > 0
}
