package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSlowAndBrokenClients: clients that trickle their headers byte by
// byte, or drop the connection mid-request, neither hold the server up
// for the others nor stay connected past the header timeout; the server
// answers normal requests all along.
func TestSlowAndBrokenClients(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, "127.0.0.1:0", h, Limits{ReadHeader: 300 * time.Millisecond, Idle: 300 * time.Millisecond, Shutdown: time.Second},
			slog.New(slog.DiscardHandler), func(a net.Addr) { addrc <- a.String() })
	}()
	addr := <-addrc

	// 100 slow clients, each sending a byte of its request line every 20 ms.
	const slow = 100
	cutOff := make(chan time.Duration, slow)
	var wg sync.WaitGroup
	for range slow {
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			start := time.Now()
			for _, b := range []byte("GET /ocsp/" + strings.Repeat("A", 200)) {
				if _, err := conn.Write([]byte{b}); err != nil {
					break // the server closed it
				}
				time.Sleep(20 * time.Millisecond)
			}
			// Whatever the server sent (a 408, or nothing), it closes.
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.Copy(io.Discard, conn)
			cutOff <- time.Since(start)
		})
	}
	// Clients that give up halfway.
	for range 50 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(conn, "POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nhalf")
		conn.Close()
	}
	// Meanwhile, normal requests are answered.
	client := &http.Client{Timeout: 5 * time.Second}
	for range 50 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("a normal request beside the slow clients: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok" {
			t.Fatalf("answer %q", body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	close(cutOff)
	// Trickling the whole line would take 4 s; the header timeout ends it
	// long before (the bound here is generous: it only catches a server
	// that never cuts anyone off).
	for d := range cutOff {
		if d > 3*time.Second {
			t.Errorf("a slow client stayed connected %s, past the 300ms header timeout", d)
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestConnectionCap: a listener holds at most MaxConns connections. At
// the cap, a new client is served by closing a kept-alive idle
// connection; with every connection busy, it waits until one ends, and
// the handler never runs more than MaxConns requests at once.
func TestConnectionCap(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var inside, most atomic.Int32
	entered, release := make(chan struct{}, 8), make(chan struct{})
	var served atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inside.Add(1)
		defer inside.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if r.URL.Path == "/block" {
			entered <- struct{}{}
			<-release
		}
		served.Add(1)
		_, _ = io.WriteString(w, "ok")
	})
	addr, done := serveCapped(ctx, h, 2)
	// Each client its own transport, so each holds its own connection.
	get := func(path string) error {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		return getOK(&http.Client{Transport: tr, Timeout: 20 * time.Second}, addr, path)
	}

	// Two clients that keep their connections open, idle.
	var idle []*http.Transport
	for range 2 {
		tr := &http.Transport{}
		idle = append(idle, tr)
		resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err := get("/"); err != nil {
		t.Fatalf("a third client with two idle connections open: %v", err)
	}
	for _, tr := range idle {
		tr.CloseIdleConnections()
	}

	// Two busy connections: a third client waits for one of them.
	busy := make(chan error, 2)
	for range 2 {
		go func() { busy <- get("/block") }()
	}
	<-entered
	<-entered
	before := served.Load()
	third := make(chan error, 1)
	go func() { third <- get("/") }()
	time.Sleep(300 * time.Millisecond) // time for a server without the cap to answer
	if served.Load() != before {
		t.Errorf("the third client was served while two connections were busy")
	}
	close(release)
	for range 2 {
		if err := <-busy; err != nil {
			t.Error(err)
		}
	}
	if err := <-third; err != nil {
		t.Errorf("the third client once a connection ended: %v", err)
	}
	if m := most.Load(); m > 2 {
		t.Errorf("%d requests in the handler at once, over the cap of 2", m)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestConnectionCapIdleLater: at the cap, a connection that was busy when
// a new client came and is kept open, idle, once its request ends, is
// closed for the new client. Before, only the connections idle when the
// cap was reached were: the new client waited for the kept one's idle
// timeout (an hour here).
func TestConnectionCapIdleLater(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	addr, done := serveCapped(ctx, h, 1)
	get := func(c *http.Client, path string) error { return getOK(c, addr, path) }
	// The first client keeps its connection open after its request.
	kept := &http.Transport{}
	defer kept.CloseIdleConnections()
	first := make(chan error, 1)
	go func() { first <- get(&http.Client{Transport: kept}, "/block") }()
	<-entered
	second := make(chan error, 1)
	go func() {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		second <- get(&http.Client{Transport: tr, Timeout: 20 * time.Second}, "/")
	}()
	time.Sleep(300 * time.Millisecond) // the second client waits at the cap
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Errorf("the second client once the first connection went idle: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// serveCapped serves h on a free port, with at most maxConns connections
// and kept-alive ones idle for up to an hour, until ctx ends; it returns
// the address, and the channel Serve's result comes on.
func serveCapped(ctx context.Context, h http.Handler, maxConns int) (string, <-chan error) {
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, "127.0.0.1:0", h, Limits{MaxConns: maxConns, Idle: time.Hour, Shutdown: 5 * time.Second},
			slog.New(slog.DiscardHandler), func(a net.Addr) { addrc <- a.String() })
	}()
	return <-addrc, done
}

// getOK GETs path from addr with c and wants the handler's "ok".
func getOK(c *http.Client, addr, path string) error {
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
		return fmt.Errorf("GET %s: %s %q", path, resp.Status, b)
	}
	return nil
}

// TestMaxConnsFor: a configured cap is kept; the default is at most half
// the files the process may open.
func TestMaxConnsFor(t *testing.T) {
	if got := MaxConnsFor(7); got != 7 {
		t.Errorf("MaxConnsFor(7) = %d", got)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if got := MaxConnsFor(0); got < 1 || got > DefaultMaxConns || uint64(got) > max(1, lim.Cur/2) {
		t.Errorf("MaxConnsFor(0) = %d with %d files allowed", got, lim.Cur)
	}
}
