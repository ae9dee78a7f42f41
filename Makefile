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
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: install
	$(VENV)/bin/python benchmarks/bench_api.py
	$(VENV)/bin/python benchmarks/bench_s3.py
	$(VENV)/bin/python benchmarks/bench_data.py
	$(VENV)/bin/python benchmarks/bench_kmeans.py
	$(VENV)/bin/python benchmarks/bench_pca.py
	$(VENV)/bin/python benchmarks/bench_linear_learner.py
	$(VENV)/bin/python -m benchmarks.bench_deploy
	$(VENV)/bin/python -m benchmarks.bench_transform

# The long ones: training (minutes), tuning (about 12 minutes, then a 2-minute replay of
# Hyperband's rule on recorded curves), and InvokeEndpoint against
# mlflow (creates a throwaway mlflow virtual environment with uv the first time).
bench-long: install
	$(VENV)/bin/python benchmarks/bench_training.py
	$(VENV)/bin/python benchmarks/bench_tuning.py
	$(VENV)/bin/python benchmarks/hyperband_replay.py
	$(VENV)/bin/python -m benchmarks.bench_invoke

clean:
	rm -rf $(VENV)
