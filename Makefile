# The two commands in the README's quick start, plus a few conveniences.
.PHONY: run test check-content bench

run:            ## install/start what is needed and serve labdeck at http://127.0.0.1:8080
	./scripts/run.sh

test:           ## the whole test suite (what CI runs)
	./scripts/test.sh

check-content:  ## lint lessons only
	cargo run --quiet --bin labdeck -- content check

bench:          ## benchmarks; figures go in the README
	./bench/run.sh
