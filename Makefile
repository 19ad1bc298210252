# Two entry points for a fresh machine with only python3: `make demo` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/convo-etl demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two pytest workers, a test file each: the tests mostly wait on servers on loopback (6 min on
# 2 cores where one worker takes 11).
test: lint
	$(BIN)/pytest -n 2 --dist loadfile

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/export_bench.py
	$(BIN)/python bench/flatten_bench.py
	$(BIN)/python bench/replay_bench.py
	$(BIN)/python bench/list_bench.py
	$(BIN)/python bench/rate_limit_bench.py
	$(BIN)/python bench/grade_bench.py
	$(BIN)/python bench/read_socket_bench.py
	$(BIN)/python bench/deletions_bench.py
	$(BIN)/python bench/size_bench.py
	$(BIN)/python bench/big_history_bench.py
	$(BIN)/python bench/lake_bench.py
	$(BIN)/python bench/lake_export_bench.py
	$(BIN)/python bench/rate_share_bench.py
	$(BIN)/python bench/startup_bench.py
	$(BIN)/python bench/unchanged_bench.py

clean:
	rm -rf $(VENV) data/parquet data/warehouse.duckdb data/reports
