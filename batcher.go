package relay

import "time"

// batcher groups deliveries for a batch listener. Its run loop is the only
// goroutine that calls the handler, so batches are handed over one at a time.
type batcher struct {
	size int
	wait time.Duration
	h    func([]*Delivery)
	in   chan *Delivery
	quit chan struct{}
	done chan struct{}
}

func newBatcher(size int, wait time.Duration, h func([]*Delivery)) *batcher {
	return &batcher{size: size, wait: wait, h: h, in: make(chan *Delivery, size),
		quit: make(chan struct{}), done: make(chan struct{})}
}

// add queues d; it waits while the batcher is busy (back-pressure on the
// dispatcher goroutine, not a drop).
func (b *batcher) add(d *Delivery) {
	select {
	case b.in <- d:
	case <-b.quit:
	}
}

// run collects and hands over batches until stop. Runs in its own goroutine.
func (b *batcher) run() {
	defer close(b.done)
	var batch []*Delivery
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		timer.Stop()
		if len(batch) > 0 {
			b.h(batch)
			batch = nil
		}
	}
	for {
		select {
		case d := <-b.in:
			batch = append(batch, d)
			if len(batch) == 1 {
				timer.Reset(b.wait)
			}
			if len(batch) >= b.size {
				flush()
			}
		case <-timer.C:
			flush()
		case <-b.quit:
			for {
				select {
				case d := <-b.in:
					batch = append(batch, d)
					if len(batch) >= b.size {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// stop hands over what is held and ends run.
func (b *batcher) stop() {
	close(b.quit)
	<-b.done
}
