# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# glibc's allocator churn costs ~1.6x on conv/diffusion workloads on CPU (see README).
export GLIBC_TUNABLES ?= glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736

.PHONY: venv demo test lint clean

# pip byte-compiles one file at a time; compileall does it on every core (≈ 20 s less of
# the ≈ 2 min a fresh venv takes on 2 cores). The .pyc files matter: Python does not write
# them itself where PYTHONDONTWRITEBYTECODE is set, and torch then imports 2.5× slower. A file
# that does not compile (a package's stray Python-2 example) is skipped, as pip skips it.
COMPILE := $(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip -q
	$(PY) -m pip install -q --no-compile -e .
	$(COMPILE)
	touch $@

# the tests also need pytest, Ray Tune, ONNX and the linters (the demo does not)
$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q --no-compile -e '.[test]'
	$(COMPILE)
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
