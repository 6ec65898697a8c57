# The README's two commands: `make demo` (slim a model on real MNIST) and `make test`.
# `make test-keras-oldest` runs the tests that exercise Keras against the oldest Keras that setup.py accepts
# (CI runs both). It leaves out what does not change with Keras's version, which running twice made CI slow: the
# command-line tests (subprocesses around the same library calls), tf.data pipelines, LiteRT timing and the
# JAX-backend check, and the docs test (their code blocks run on the newest Keras).
# `make docs` installs the docs extra and builds the documentation site into site/ with `mkdocs build --strict`
# (any warning, such as a broken link or a docstring mkdocstrings cannot read, fails it; CI runs it too).
PYTHON ?= python3
VENV ?= .venv
PIP = $(VENV)/bin/pip
# TensorFlow's wheel is ~570 MB: a dropped connection resumes the download (pip >= 25.1, which the venv
# gets first), and a failed install is tried twice more before make gives up.
INSTALL = --retries 10 --resume-retries 10
RETRY = for try in 1 2 3; do
UNTIL = && break; [ $$try = 3 ] && exit 1; echo "pip failed; try $$((try + 1)) of 3" >&2; sleep 20; done
OLDEST_VENV ?= .venv-keras-oldest
OLDEST_SKIP = tests/cli tests/data tests/deploy/test_latency.py tests/test_jax_backend.py tests/test_docs.py
KERAS_OLDEST := $(shell sed -n 's/.*"keras>=\([0-9.]*\)".*/\1/p' setup.py)

.PHONY: venv demo test test-keras-oldest docs

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --retries 10 --upgrade pip

venv: $(VENV)/bin/python
	$(RETRY) $(PIP) install -q $(INSTALL) -e ".[all,test]" $(UNTIL)

demo: venv
	$(VENV)/bin/kslim-slim

test: venv
	$(VENV)/bin/python -m pytest -q tests

$(OLDEST_VENV)/bin/python:
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip install -q --retries 10 --upgrade pip

test-keras-oldest: $(OLDEST_VENV)/bin/python
	$(RETRY) $(OLDEST_VENV)/bin/pip install -q $(INSTALL) -e ".[all,test]" "keras==$(KERAS_OLDEST)" $(UNTIL)
	$(OLDEST_VENV)/bin/python -c "import keras; assert keras.__version__ == '$(KERAS_OLDEST)', keras.__version__"
	$(OLDEST_VENV)/bin/python -m pytest -q tests $(OLDEST_SKIP:%=--ignore=%)

docs: $(VENV)/bin/python
	$(RETRY) $(PIP) install -q $(INSTALL) -e ".[docs]" $(UNTIL)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
