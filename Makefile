# Two commands for a fresh Debian 12 machine (root, or sudo available):
#   make demo   install everything, then run the default matrix
#   make test   install everything, then run the linter and the test suite
# Both are idempotent: Debian packages are installed only when missing and the
# virtualenv is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
DEB_PACKAGES = qemu-system-x86 qemu-system-arm qemu-system-ppc qemu-system-misc qemu-utils \
	seabios ovmf ovmf-ia32 qemu-efi-aarch64 grub-pc-bin grub-efi-amd64-bin bochs bochsbios vgabios \
	xorriso mtools python3-venv ca-certificates chromium chromium-driver \
	tesseract-ocr tesseract-ocr-eng simh gxemul gcc-mipsel-linux-gnu
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN = $(VENV)/bin

.PHONY: demo test deps venv lint bench clean

SHARED_IMAGES ?= ../shared/images

demo: venv
	@if [ -d $(SHARED_IMAGES) ]; then $(BIN)/harness cache import $(SHARED_IMAGES); fi
	$(BIN)/harness run --tag local

# the tests that boot no VM share the two cores (pytest-xdist); the VM tests run one at
# a time, as their guests' timing under tcg wants a core each
test: venv
	$(BIN)/ruff check harness tests benchmarks
	$(BIN)/pytest -q -rs -m "not vm" -n 2
	$(BIN)/pytest -q -rs -m vm --durations=5 tests/test_catalog.py
	$(BIN)/pytest -q -rs -m vm -n 2 --dist loadfile --durations=15 \
		--deselect tests/test_catalog.py::test_every_local_guest_passes_under_tcg

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -q || true; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# bytecode written ahead: where PYTHONDONTWRITEBYTECODE is set, every command would
# otherwise compile the harness again (~0.1 s of each start)
venv: deps $(VENV)/.installed
	@$(BIN)/python -m compileall -q harness

lint: venv
	$(BIN)/ruff check harness tests benchmarks

bench: venv
	$(BIN)/python benchmarks/matcher.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/cache_hit.py
	$(BIN)/python benchmarks/download.py
	$(BIN)/python benchmarks/screen.py
	$(BIN)/python benchmarks/scheduling.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
