package api

import (
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxConns is the connections a listener holds open when nothing
// else is said, unless the process may open fewer than twice as many files
// (see MaxConnsFor).
const DefaultMaxConns = 10000

// MaxConnsFor is the cap on a listener's open connections: configured if
// positive, else DefaultMaxConns or half the files the process may open,
// whichever is less. Connections are files: without a cap, anyone could
// open enough to leave the HSM module, the database and the logs none.
func MaxConnsFor(configured int) int {
	if configured > 0 {
		return configured
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur/2 < DefaultMaxConns {
		return int(max(1, lim.Cur/2))
	}
	return DefaultMaxConns
}

// capListener holds at most cap(slots) connections open. At the cap it
// makes room by closing a kept-alive connection that waits for its next
// request (the server reports those through connState), as a web server
// short of connections does; with none idle, Accept waits for one to
// close or to become idle, and new clients wait in the kernel's backlog.
type capListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	close sync.Once
	warn  func()
	// idled is signalled when a connection becomes idle: Accept, waiting
	// at the cap, closes it then.
	idled chan struct{}

	mu   sync.Mutex
	idle map[net.Conn]struct{}
}

func newCapListener(ln net.Listener, max int, warn func()) *capListener {
	return &capListener{Listener: ln, slots: make(chan struct{}, max), done: make(chan struct{}),
		idled: make(chan struct{}, 1), idle: make(map[net.Conn]struct{}), warn: warn}
}

func (l *capListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.warn()
	wait:
		for {
			// A connection that goes idle while Accept waits is closed
			// too: one still finishing its response when the cap was
			// reached would otherwise be kept, and the new client wait
			// until some connection's idle timeout.
			l.closeIdle()
			select {
			case l.slots <- struct{}{}:
				break wait
			case <-l.idled:
			case <-l.done:
				return nil, net.ErrClosed
			}
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &capConn{Conn: c, l: l}, nil
}

func (l *capListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// closeIdle closes one idle connection, if there is one.
func (l *capListener) closeIdle() {
	l.mu.Lock()
	var victim net.Conn
	for c := range l.idle {
		victim = c
		delete(l.idle, c)
		break
	}
	l.mu.Unlock()
	if victim != nil {
		victim.Close()
	}
}

// connState is the server's ConnState hook: it tracks which connections
// are idle.
func (l *capListener) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s == http.StateIdle {
		l.idle[c] = struct{}{}
		select {
		case l.idled <- struct{}{}:
		default:
		}
	} else {
		delete(l.idle, c)
	}
}

// capConn gives its slot back once, when closed.
type capConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.l.slots })
	return err
}

// everyMinute returns a function that runs f at most once a minute.
func everyMinute(f func()) func() {
	var mu sync.Mutex
	var last time.Time
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(last) >= time.Minute {
			last = now
			f()
		}
	}
}
