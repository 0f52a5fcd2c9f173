# Two commands set up everything on a fresh machine: `make demo` and `make test`.
# Both build .venv on first use; a stamp keyed on pyproject.toml and this file keeps later runs quick.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.neurodeploy-installed
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: venv demo test lint bench docs docs-figures clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch: the CPU wheel pinned exactly (any other spec pulls a multi-GB CUDA build).
	$(PIP) "torch==2.13.0" "numpy>=1.24.4,<2"
	# xylo: xylosim (the Xylo tests' reference) builds from its C++ sdist, about 25 s of CPU.
	# oracles: nengo-loihi and brian2-loihi, the Loihi 1 references of tests/test_loihi1_oracles.py.
	# cluster: Dask for studies (tests/test_studies.py starts local clusters itself).
	$(PIP) -e ".[dev,fast,snntorch,lava,learn,xylo,oracles,cluster]" "torch==2.13.0"
	# norse: its torchvision requirement is unused by norse.torch and would replace torch.
	$(PIP) --no-deps "norse==1.1.0"
	# lava-nc 0.10.0 runs on 3.11 with its needs pinned above; its metadata says <3.11.
	$(PIP) --no-deps --ignore-requires-python "lava-nc==0.10.0"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/neurodeploy demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q
	$(BIN)/python docs/gen_api_tree.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

# The documentation site (mkdocs.yml, docs/) into site/; --strict turns every warning into a failure.
docs: $(STAMP)
	$(BIN)/python docs/gen_api_tree.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Every long result the docs show, regenerated: the pages' printed outputs (docs/run_docs.py), the export
# table, and the learning tables (about an hour and a quarter on two cores; the tables take most of it).
docs-figures: $(STAMP)
	$(BIN)/python docs/run_docs.py --write
	$(BIN)/python benchmarks/export_roundtrip.py --write
	$(BIN)/python benchmarks/learning_table.py --epochs 40 --seeds 5 --conditions loihi2 --write
	$(BIN)/python benchmarks/learning_table.py --task digits --epochs 20 --seeds 5 --rules bp,frozen,fa,kp,pal,sal --conditions loihi2 --write

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/emulator_vs_lava.py
	$(BIN)/python benchmarks/compile_scale.py

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .ruff_cache
