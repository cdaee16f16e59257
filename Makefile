# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# glibc's allocator churn costs ~1.6x on conv/diffusion workloads on CPU (see README).
export GLIBC_TUNABLES ?= glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736

.PHONY: venv demo test lint clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip -q
	$(PY) -m pip install -q -e .
	touch $@

# the tests also need pytest, Ray Tune, ONNX and the linters (the demo does not)
$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/svpgen study --preset quick --out runs/demo

test: $(VENV)/.installed-test
	$(PY) -m pytest

# formatting, pyflakes/pycodestyle (≤ 100 columns), import order; mypy on the public API
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf runs $(VENV)
