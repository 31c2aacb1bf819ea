# The two commands of README.md: `make run` and `make test`.
GO  ?= go
BIN ?= bin/sanad
export CGO_ENABLED := 1

.PHONY: run test bench bench-stepca build clean

build:
	$(GO) build -o $(BIN) ./cmd/sanad

## run: the whole service on embedded defaults (SQLite and a SoftHSM2 token under ./var)
run:
	@scripts/deps run
	$(GO) build -o $(BIN) ./cmd/sanad
	./$(BIN) dev $(ARGS)

## test: every check and test (PostgreSQL ones too when it can be started)
test:
	@scripts/deps test
	scripts/test

## bench: HSM signing through crypto.Signer beside a bare C_Sign loop, same run;
## signature verification beside bare ecdsa + x509 verification, same run;
## then the OCSP responder over 100 000 certificates beside a bare net/http handler
bench:
	@scripts/deps test
	$(GO) test -run '^$$' -bench 'BenchmarkSign' -benchtime 2s ./hsm/
	$(GO) test -run '^$$' -bench 'BenchmarkVerify' -benchtime 2s ./verify/
	$(GO) build -o $(BIN) ./cmd/sanad
	./$(BIN) bench ocsp --certificates 100000 --duration 10s

## bench-stepca: issue 6's throughput target on this machine: step-ca's
## REST sign at 16 and 64 workers beside `sanad bench enroll` at 16 and 64
## applicants, alternating rounds (ROUNDS, N; see scripts/bench-stepca)
bench-stepca:
	@scripts/deps run
	scripts/bench-stepca

clean:
	rm -rf bin
