# The two commands of the README:
#   make book   build the website into _build/html (executes every chapter; cached)
#   make test   lint, build the website, run every test
#   make pdf    the whole book as one PDF, _build/pdf/book.pdf (printed by Chromium; after
#               make book it reuses its executed chapters)
# Both install what is missing first (scripts/setup.sh).
PY := .venv/bin/python

.PHONY: book pdf test lint bench clean setup-book setup-test

setup-book:
	@bash scripts/setup.sh book

setup-test:
	@bash scripts/setup.sh test

book: setup-book
	.venv/bin/jupyter-book build . --warningiserror --keep-going

# Jupyter Book's pdfhtml builder writes a single-page website and prints it (course_lib.book_ext
# makes it print with the system's Chromium). It runs in its own output folder, so that the
# website in _build/html stays as it is, with a copy of the execution cache.
pdf: setup-test
	mkdir -p _build/pdf-book/_build _build/pdf
	if [ -d _build/.jupyter_cache ]; then rm -rf _build/pdf-book/_build/.jupyter_cache && \
		cp -r _build/.jupyter_cache _build/pdf-book/_build/; fi
	.venv/bin/jupyter-book build . --builder pdfhtml --path-output _build/pdf-book --keep-going
	cp _build/pdf-book/_build/pdf/book.pdf _build/pdf/book.pdf
	@echo "the book as one PDF: _build/pdf/book.pdf"

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
