# The two commands: `make run` and `make test`. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test lint bench bench-long clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@touch $@

run: install
	$(VENV)/bin/opensage sdk-config
	$(VENV)/bin/opensage server

# The import contracts (pyproject's [tool.importlinter]) first: seconds, and a broken layer
# is a design fault to see before any test result.
test: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q --durations=25

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: install
	$(VENV)/bin/python -m benchmarks.bench_api
	$(VENV)/bin/python -m benchmarks.bench_s3
	$(VENV)/bin/python -m benchmarks.bench_data
	$(VENV)/bin/python -m benchmarks.bench_kmeans
	$(VENV)/bin/python -m benchmarks.bench_pca
	$(VENV)/bin/python -m benchmarks.bench_linear_learner
	$(VENV)/bin/python -m benchmarks.bench_deploy
	$(VENV)/bin/python -m benchmarks.bench_transform

# The long ones: training (minutes), tuning (about 12 minutes, then a 2-minute replay of
# Hyperband's rule on recorded curves), and InvokeEndpoint against
# mlflow (creates a throwaway mlflow virtual environment with uv the first time).
bench-long: install
	$(VENV)/bin/python -m benchmarks.bench_training
	$(VENV)/bin/python -m benchmarks.bench_tuning
	$(VENV)/bin/python -m benchmarks.hyperband_replay
	$(VENV)/bin/python -m benchmarks.bench_invoke

clean:
	rm -rf $(VENV)
