# Thin wrappers around ./dev, for people who type make.
.PHONY: run test setup docs bench
run:
	./dev run
test:
	./dev test
setup:
	./dev setup
docs: setup
	.venv/bin/gocast config docs > docs/configuration.md
bench: setup
	.venv/bin/python benchmarks/bench_vibe.py
