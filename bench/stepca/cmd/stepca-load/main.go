// Command stepca-load, for scripts/bench-stepca, loads step-ca's POST /1.0/sign with JWK one-time tokens.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

type item struct {
	key    *ecdsa.PrivateKey
	csrPEM string
	cn     string
}

func newItem(i int) (item, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return item{}, err
	}
	cn := fmt.Sprintf("bench-%d.example", i)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: cn},
		DNSNames: []string{cn},
	}, k)
	if err != nil {
		return item{}, err
	}
	return item{key: k, cn: cn, csrPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}, nil
}

type stepClaims struct {
	jwt.Claims
	SANs []string `json:"sans"`
}

type client struct {
	url, aud, prov string
	signer         jose.Signer
	hc             *http.Client
}

func (c *client) token(sub string) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	now := time.Now()
	cl := stepClaims{
		Claims: jwt.Claims{
			Issuer:    c.prov,
			Subject:   sub,
			Audience:  jwt.Audience{c.aud},
			ID:        hex.EncodeToString(jti),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(now.Add(5 * time.Minute)),
		},
		SANs: []string{sub},
	}
	return jwt.Signed(c.signer).Claims(cl).Serialize()
}

func (c *client) sign(it item) error {
	ott, err := c.token(it.cn)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	body, _ := json.Marshal(map[string]string{"csr": it.csrPEM, "ott": ott})
	resp, err := c.hc.Post(c.url+"/1.0/sign", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	var sr struct {
		Crt string `json:"crt"`
	}
	if err := json.Unmarshal(data, &sr); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	blk, _ := pem.Decode([]byte(sr.Crt))
	if blk == nil {
		return errors.New("no PEM in crt field")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fmt.Errorf("parse crt: %w", err)
	}
	if !it.key.PublicKey.Equal(cert.PublicKey) {
		return errors.New("certificate public key != CSR public key")
	}
	return nil
}

func rusageCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU returns utime+stime of pid from /proc/<pid>/stat (assumes CLK_TCK=100).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 { // fields after comm: state(3) ... utime(14) stime(15)
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat")
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

type result struct {
	latencies []time.Duration
	errors    int64
	errSample []string
	elapsed   time.Duration
}

func run(c *client, n, conc, base int, pre []item) result {
	var next int64 = -1
	var errs int64
	var mu sync.Mutex
	var samples []string
	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(atomic.AddInt64(&next, 1))
				if i >= n {
					return
				}
				t0 := time.Now()
				var it item
				var err error
				if pre != nil {
					it = pre[i]
				} else {
					it, err = newItem(base + i)
				}
				if err == nil {
					err = c.sign(it)
				}
				if err != nil {
					atomic.AddInt64(&errs, 1)
					mu.Lock()
					if len(samples) < 5 {
						samples = append(samples, err.Error())
					}
					mu.Unlock()
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	r := result{elapsed: time.Since(start), errors: errs, errSample: samples}
	for _, l := range lats {
		r.latencies = append(r.latencies, l...)
	}
	sort.Slice(r.latencies, func(a, b int) bool { return r.latencies[a] < r.latencies[b] })
	return r
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(float64(len(l))*p+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(l) {
		i = len(l) - 1
	}
	return l[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func main() {
	url := flag.String("url", "https://127.0.0.1:9443", "step-ca base URL")
	n := flag.Int("n", 5000, "timed requests")
	conc := flag.Int("c", 16, "concurrent workers")
	warmup := flag.Int("warmup", 200, "untimed warmup requests")
	rootPath := flag.String("root", "ca/root.crt", "root certificate")
	jwkPath := flag.String("jwk", "ca/secrets/provisioner.jwk", "private JWK of the provisioner")
	prov := flag.String("provisioner", "bench", "provisioner name (token iss)")
	aud := flag.String("aud", "", "token audience (default <url>/1.0/sign)")
	precsr := flag.Bool("precsr", false, "generate all keys/CSRs before the timed part")
	jsonOut := flag.String("json", "", "write results as JSON to this file")
	pidfile := flag.String("pidfile", "ca/step-ca.pid", "step-ca pidfile (for its CPU usage); empty to skip")
	flag.Parse()
	*url = strings.TrimRight(*url, "/")
	if *aud == "" {
		*aud = *url + "/1.0/sign"
	}

	rootPEM, err := os.ReadFile(*rootPath)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPEM) {
		log.Fatal("no certificates in ", *rootPath)
	}
	jwkJSON, err := os.ReadFile(*jwkPath)
	if err != nil {
		log.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(jwkJSON, &jwk); err != nil {
		log.Fatal("parse jwk: ", err)
	}
	if jwk.IsPublic() {
		log.Fatal(*jwkPath, " is not a private key")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jwk.Key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", jwk.KeyID))
	if err != nil {
		log.Fatal(err)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConns:        *conc,
		MaxIdleConnsPerHost: *conc,
		IdleConnTimeout:     90 * time.Second,
	}
	c := &client{url: *url, aud: *aud, prov: *prov, signer: signer, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}

	var warm, timed []item
	if *precsr {
		all := make([]item, *warmup+*n)
		for i := range all {
			if all[i], err = newItem(i); err != nil {
				log.Fatal(err)
			}
		}
		warm, timed = all[:*warmup], all[*warmup:]
	}
	if *warmup > 0 {
		wr := run(c, *warmup, *conc, 0, warm)
		if wr.errors > 0 {
			log.Printf("warmup: %d/%d errors, e.g. %v", wr.errors, *warmup, wr.errSample)
			if wr.errors == int64(*warmup) {
				os.Exit(1)
			}
		}
	}

	pid := 0
	if *pidfile != "" {
		if b, err := os.ReadFile(*pidfile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	var caCPU0 time.Duration
	caOK := pid > 0
	if caOK {
		if caCPU0, err = procCPU(pid); err != nil {
			caOK = false
		}
	}
	runtime.GC()
	cpu0 := rusageCPU()
	r := run(c, *n, *conc, *warmup, timed)
	cpu1 := rusageCPU()
	var caCPU time.Duration
	if caOK {
		if t, err := procCPU(pid); err == nil {
			caCPU = t - caCPU0
		} else {
			caOK = false
		}
	}

	ok := len(r.latencies)
	rate := float64(ok) / r.elapsed.Seconds()
	out := map[string]any{
		"target":               "step-ca",
		"url":                  *url,
		"n":                    *n,
		"concurrency":          *conc,
		"warmup":               *warmup,
		"precsr":               *precsr,
		"ok":                   ok,
		"errors":               r.errors,
		"elapsed_s":            r.elapsed.Seconds(),
		"certs_per_s":          rate,
		"p50_ms":               ms(pct(r.latencies, 0.50)),
		"p99_ms":               ms(pct(r.latencies, 0.99)),
		"max_ms":               ms(pct(r.latencies, 1)),
		"load_cpu_s":           (cpu1 - cpu0).Seconds(),
		"load_cpu_ms_per_cert": 0.0,
		"gomaxprocs":           runtime.GOMAXPROCS(0),
		"time":                 time.Now().UTC().Format(time.RFC3339),
	}
	if ok > 0 {
		out["load_cpu_ms_per_cert"] = ms(cpu1-cpu0) / float64(ok)
	}
	caStr := "n/a"
	if caOK {
		out["stepca_pid"] = pid
		out["stepca_cpu_s"] = caCPU.Seconds()
		if ok > 0 {
			out["stepca_cpu_ms_per_cert"] = ms(caCPU) / float64(ok)
			caStr = fmt.Sprintf("%.2fms", ms(caCPU)/float64(ok))
		}
	}
	if len(r.errSample) > 0 {
		out["error_samples"] = r.errSample
	}
	fmt.Printf("step-ca sign: n=%d c=%d precsr=%v ok=%d errors=%d in %.2fs -> %.1f certs/s, p50=%.1fms p99=%.1fms, load CPU %.2fms/cert, step-ca CPU %s/cert\n",
		*n, *conc, *precsr, ok, r.errors, r.elapsed.Seconds(), rate,
		out["p50_ms"], out["p99_ms"], out["load_cpu_ms_per_cert"], caStr)
	for _, e := range r.errSample {
		fmt.Fprintln(os.Stderr, "error sample:", e)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if r.errors > 0 {
		os.Exit(2)
	}
}
