# The two commands of the README:
#   make book   build the website into _build/html (executes every chapter; cached)
#   make test   lint, build the website, run every test
# Both install what is missing first (scripts/setup.sh).
PY := .venv/bin/python

.PHONY: book test lint bench clean setup-book setup-test

setup-book:
	@bash scripts/setup.sh book

setup-test:
	@bash scripts/setup.sh test

book: setup-book
	.venv/bin/jupyter-book build . --warningiserror --keep-going

lint: setup-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check course_lib tests benchmarks

test: setup-test lint
	.venv/bin/jupyter-book build . --warningiserror --keep-going
	$(PY) -m pytest

bench: setup-test
	$(PY) -m benchmarks

clean:
	rm -rf _build
