# Every target bootstraps what it needs: the virtual environment and the install.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUTPUT ?= .
PORT ?= 6006
# make tensorboard EXPERIMENT=name: one experiment per logdir (each declares its own HParams)
EXPERIMENT ?= digits_init_x_loss
# make run: the shipped default experiments, on embedded data
DEFAULT_CONFIGS := experiments/configs/digits_init_x_loss.toml \
                   experiments/configs/breast_cancer_losses.toml \
                   experiments/configs/regression_outliers_losses.toml

# make tune [WORKERS=2] [TUNE_CONFIG=...] [SET="tune.max_trials=3"]: a keras-tuner search (resumes a
# stopped one), the tuned comparison and the tuner report; WORKERS=N: keras-tuner's chief + N workers
TUNE_CONFIG ?= experiments/configs/digits_tune.toml
WORKERS ?= 0

# make test [PYTEST_ARGS="-n 2 -k saved"]: two pytest-xdist workers, a test file per worker at a time
# (module fixtures are shared within a file); PYTEST_ARGS="-n 0" runs in one process
PYTEST_ARGS ?= -n 2 --dist loadfile

# make bench [SEEDS="1 3 10"]: the benchmark scripts (engines: seed counts of the default digits
# grid; the engines' agreement by depth; the cost of full diagnostics; tuning throughput)
SEEDS ?= 3

.PHONY: install browser slurm screenshots run experiment tune claims report tensorboard test bench lint clean distclean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# environments made before the switch to tensorflow: tensorflow-cpu shares its folder, so both go
	! $(PY) -m pip show -q tensorflow-cpu 2>/dev/null || $(PY) -m pip uninstall -y -q tensorflow-cpu tensorflow
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	@for config in $(DEFAULT_CONFIGS); do \
		$(PY) -m experiments run $$config --output $(OUTPUT) || exit $$?; \
	done

# make experiment CONFIG=path/to/config.toml [SET="epochs=1 seeds=[0]"]
experiment: $(STAMP)
	@test -n "$(CONFIG)" || { echo "usage: make experiment CONFIG=path/to/config.toml [SET=\"epochs=1 seeds=[0]\"]"; exit 2; }
	$(PY) -m experiments run $(CONFIG) --output $(OUTPUT) $(foreach s,$(SET),--set '$(s)')

# make claims [SET="engine=keras"]: every experiments/configs/claims/*.toml, then reports/claims/claims.md
claims: $(STAMP)
	$(PY) -m experiments claims --output $(OUTPUT) $(foreach s,$(SET),--set '$(s)')

tune: $(STAMP)
	$(PY) -m experiments tune $(TUNE_CONFIG) --output $(OUTPUT) --workers $(WORKERS) $(foreach s,$(SET),--set '$(s)')

report: $(STAMP)
	$(PY) -m experiments report --output $(OUTPUT)

tensorboard: $(STAMP)
	$(PY) -m experiments tensorboard $(EXPERIMENT) --output $(OUTPUT) --port $(PORT)

# the browser tests drive Debian's chromium through its chromium-driver (no browser download works
# here); installed when missing, which needs root (CI runs as root)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		test "$$(id -u)" = 0 || { echo "make test needs chromium and chromium-driver: sudo apt-get install chromium chromium-driver"; exit 2; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# a single-node SLURM cluster for tests/integration/test_slurm.py (Debian's slurm-wlm and munge; the
# test starts and stops its daemons): installed when missing, as root; elsewhere that test is skipped
slurm:
	@command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && \
		command -v munged >/dev/null || { \
		test "$$(id -u)" = 0 || { echo "note: without SLURM tests/integration/test_slurm.py is skipped (sudo apt-get install slurmctld slurmd slurm-client munge)"; exit 0; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null; }

# make screenshots: the README's pictures of TensorBoard (experiments/docs/*.png), from the default experiment
screenshots: $(STAMP) browser
	$(PY) tests/screenshots.py experiments/docs

test: $(STAMP) browser slurm
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m experiments.benchmarks.engines --seeds $(SEEDS)
	$(PY) -m experiments.benchmarks.agreement
	$(PY) -m experiments.benchmarks.diagnostics
	$(PY) -m experiments.benchmarks.tuning
	$(PY) -m experiments.benchmarks.stacked_conv
	$(PY) -m experiments.benchmarks.stacking
	$(PY) -m experiments.benchmarks.shards

lint: $(STAMP)
	$(VENV)/bin/ruff check experiments models initializers tests
	$(VENV)/bin/lint-imports --config setup.cfg

clean:
	rm -rf runs reports retired .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
