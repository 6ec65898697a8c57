# The README's two commands: `make demo` (slim a model on real MNIST) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PIP = $(VENV)/bin/pip

.PHONY: venv demo test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(VENV)/bin/python
	$(PIP) install -q -e ".[all,test]"

demo: venv
	$(VENV)/bin/kslim-slim

test: venv
	$(VENV)/bin/python -m pytest -q tests
