# Two commands do everything on a fresh machine with Python 3.11 and git:
#   make demo   install, then make an image through the real queue (out/demo.png)
#   make test   install, then run the tests (a real Redis is started for them; no GPU; only tests/test_install.py
#               reads PyPI, for a fresh core-only venv)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first and pinned, so nothing else can pull in another build. For a CPU-only machine set
# TORCH_INDEX=https://download.pytorch.org/whl/cpu to skip the CUDA libraries.
TORCH := torch==2.13.0
TORCH_INDEX ?=
PYTEST_ARGS ?= -q
# The lock (README: installing): requirements/core.txt (the bot, the queue, the CLI), worker.txt (core + the worker
# extra), dev.txt (everything: what make install and CI install), pinned with hashes by pip-compile from
# pyproject.toml. torch is left out of it (pinned above, installed first) so TORCH_INDEX still picks CPU or CUDA.
# `make lock` keeps every pin it can and adds what pyproject.toml gained; `make lock LOCK_ARGS=--upgrade` moves every
# pin to the newest release allowed (LOCK_ARGS='--upgrade-package NAME' moves one).
PIP_TOOLS := pip-tools==7.6.2
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/python -m piptools compile --quiet --generate-hashes \
	--strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host --unsafe-package torch --no-allow-unsafe
LOCK_ARGS ?=

# The Discord front end: the bot, worker-side delivery, and their tests.
FRONT_PATHS := bot/__init__.py bot/actions.py bot/checks.py bot/client.py bot/errors.py bot/flags.py bot/jobs.py \
	bot/launcher.py bot/store.py bot/sync.py bot/views.py bot/cogs/__init__.py bot/cogs/generation.py bot/cogs/help.py \
	bot/cogs/preferences.py bot/cogs/results.py worker/delivery.py worker/discord_rest.py worker/targets.py \
	worker/variations.py imagine/ui.py imagine/uploads.py imagine/supervisor.py tests/bot tests/e2e
# Moderation and fair order (issue 5): limits, admission, the fair queue, /mod, /queue, /cancel.
MOD_PATHS := imagine/admission.py imagine/fair.py imagine/fair_lua.py imagine/limits.py imagine/moderation.py \
	imagine/fair_read.py imagine/fair_queue.py imagine/retention.py imagine/memory.py bot/cogs/servers.py \
	imagine/waiting.py worker/fair.py bot/backlog.py bot/cogs/moderation.py bot/cogs/queue.py bench/fair.py \
	bench/fairscale.py bench/fair_old_lua.py imagine/blocklist.py imagine/skeleton.py bench/blocklist.py \
	bench/blocklist_regex.py
# Owners' deployment: model families, checks, LoRAs, GPU practice, metrics, status, logs, the UNet benchmark.
DEPLOY_PATHS := models/families.py models/check.py models/lora.py worker/gpu.py worker/render.py worker/safety.py \
	worker/metrics.py worker/startup.py bot/metrics.py imagine/status.py imagine/logs.py bench/unets.py bench/gpu.py \
	tests/models/builders.py tests/models/conftest.py tests/models/test_families.py tests/models/test_lora.py \
	tests/models/test_nsfw.py tests/models/test_check.py tests/models/test_readme_registry.py
# Clips (issue 7): the clip model's package (ruff; its torch-free modules typed too), encoding, /animate.
CLIP_PATHS := models/clips models/clips/world.py models/clips/captions.py models/clips/heldout.py \
	models/clips/motion.py models/clips/card.py models/clips/tiny.py worker/video.py bot/cogs/animate.py \
	tests/models/clips
# Everyday things (issue 20): the everyday recipe's package (ruff; all but its diffusers loops typed too), its tests.
EVERYDAY_PATHS := models/everyday models/everyday/catalog.py models/everyday/world.py models/everyday/captions.py \
	models/everyday/heldout.py models/everyday/sprites.py models/everyday/reading.py models/everyday/text.py \
	models/everyday/feature.py models/everyday/evaluate.py models/everyday/architecture.py tests/models/everyday
# Speed (issue 8): cross-job batching, CPU speed settings, `make bench` and its tests.
SPEED_PATHS := worker/batching.py worker/rendezvous.py worker/speed.py bench/__init__.py bench/__main__.py bench/common.py \
	bench/throughput.py bench/sampler.py bench/frontend.py bench/quality.py bench/report.py tests/bench
# Nothing lost (issue 6): the reaper, exactly-once delivery and the outbox, upload checks, the chaos script.
RELIABILITY_PATHS := worker/reaper.py worker/idempotency.py worker/outbox.py imagine/images.py bot/attachments.py \
	bench/chaos.py bench/chaos_procs.py bench/chaos_report.py tests/reliability
# Security (issue 17): the workers' job allow-list, interaction tokens' own key, the bot's one admission door.
SECURITY_PATHS := worker/allowed.py imagine/tokens.py bot/gate.py tests/scan.py
# The spine's files that lint and type checks cover; other packages add theirs as they are ready.
LINT_PATHS := imagine/__init__.py imagine/__main__.py imagine/cli.py imagine/contract imagine/keys.py \
	imagine/progress.py imagine/queue.py imagine/redis.py imagine/settings.py imagine/devices.py \
	worker/__init__.py worker/context.py worker/encoding.py worker/jobs.py worker/pipelines.py worker/worker.py \
	models/loader.py models/registry.py models/samplers.py models/tiny.py models/training.py models/cpu.py models/prompt_cache.py bench/spine.py \
	tests/conftest.py tests/helpers.py tests/test_deploy.py tests/imagine tests/worker tests/models/test_loader.py \
	tests/models/test_registry.py tests/models/test_samplers.py tests/models/test_training.py tests/models/test_prompt_cache.py \
	tests/models/shapes/test_shipped_model.py tests/models/shapes/test_train.py tests/test_install.py \
	$(FRONT_PATHS) $(DEPLOY_PATHS) $(MOD_PATHS) $(CLIP_PATHS) $(SPEED_PATHS) $(RELIABILITY_PATHS) $(SECURITY_PATHS) \
	$(EVERYDAY_PATHS)
TYPED_PATHS := $(filter %.py,$(filter-out tests/%,$(LINT_PATHS)))

.PHONY: install lock demo test lint bench bench-quality bench-spine chaos clean

install: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, then exactly the lock's files (hashes checked; --no-deps: nothing resolved afresh), then this checkout
# (editable); pip check confirms the set is whole. tests/test_install.py fails when pyproject.toml names a package
# the lock lacks (run make lock).
$(VENV)/.installed: pyproject.toml requirements/dev.txt | $(BIN)/python
	$(BIN)/python -m pip install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) '$(TORCH)'
	$(BIN)/python -m pip install --require-hashes --no-deps -r requirements/dev.txt
	$(BIN)/python -m pip install --no-deps -e .
	$(BIN)/python -m pip check
	@touch $@

# Refresh the lock after editing pyproject.toml's dependencies (a few minutes; reads PyPI). dev.txt is resolved
# first; core.txt and worker.txt take its versions, so every role runs the same releases.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet '$(PIP_TOOLS)'
	$(PIP_COMPILE) $(LOCK_ARGS) --extra worker --extra dev -o requirements/dev.txt pyproject.toml
	$(PIP_COMPILE) --constraint requirements/dev.txt -o requirements/core.txt pyproject.toml
	$(PIP_COMPILE) --constraint requirements/dev.txt --extra worker -o requirements/worker.txt pyproject.toml

demo: install
	$(BIN)/imagine generate "a big red star in the top left corner on a black background" --seed 42 --out out/demo.png
	@$(BIN)/python -c "from PIL import Image; print('parameters:', Image.open('out/demo.png').text['parameters'])"

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy $(TYPED_PATHS)
	$(BIN)/deptry .

# Ratios measured side by side in one run (worker vs direct, batching, sampler vs peak, bot burst, queue):
# a table, out/bench.json and out/bench.png, in a few minutes. See the README's latency budget.
bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench

# The shipped model's evaluation under each CPU speed setting and step count (a few minutes).
bench-quality: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.quality

# The spine's first numbers: pickup latency, cold start, imagine generate vs diffusers.
bench-spine: install
	HF_HUB_OFFLINE=1 $(BIN)/python bench/spine.py

# 200 requests from 8 fake members while workers are killed, Redis crashes and Discord fails (several minutes):
# jobs submitted, delivered, failed with a message, duplicated and lost, and worker death -> retry times.
chaos: install
	HF_HUB_OFFLINE=1 $(BIN)/python bench/chaos.py --out out/chaos.json

clean:
	rm -rf out .pytest_cache
