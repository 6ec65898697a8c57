# The README's two commands: `make demo` (slim a model on real MNIST) and `make test`.
# `make test-keras-oldest` runs the same tests against the oldest Keras that setup.py accepts (CI runs both).
PYTHON ?= python3
VENV ?= .venv
PIP = $(VENV)/bin/pip
OLDEST_VENV ?= .venv-keras-oldest
KERAS_OLDEST := $(shell sed -n 's/.*"keras>=\([0-9.]*\)".*/\1/p' setup.py)

.PHONY: venv demo test test-keras-oldest

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(VENV)/bin/python
	$(PIP) install -q -e ".[all,test]"

demo: venv
	$(VENV)/bin/kslim-slim

test: venv
	$(VENV)/bin/python -m pytest -q tests

$(OLDEST_VENV)/bin/python:
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip install -q --upgrade pip

test-keras-oldest: $(OLDEST_VENV)/bin/python
	$(OLDEST_VENV)/bin/pip install -q -e ".[all,test]" "keras==$(KERAS_OLDEST)"
	$(OLDEST_VENV)/bin/python -c "import keras; assert keras.__version__ == '$(KERAS_OLDEST)', keras.__version__"
	$(OLDEST_VENV)/bin/python -m pytest -q tests
