package api

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
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
		done <- Serve(ctx, "127.0.0.1:0", h, Timeouts{ReadHeader: 300 * time.Millisecond, Idle: 300 * time.Millisecond, Shutdown: time.Second},
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
