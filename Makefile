PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup test demo bench soak schemas screenshots clean

## setup: create .venv and install the project with its test dependencies
setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[test]"
	touch $(STAMP)

## test: set everything up (venv, Kafka jars, Redis) and run every test
test: setup
	$(VENV)/bin/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

## demo: local Kafka + Redis + worker + simulated fleet, alerts on screen (Ctrl-C stops)
demo: setup
	$(VENV)/bin/yrd-hazmat demo

## bench: the end-to-end pipeline benchmark, then the JT/T 809 link and uplink, then the archive (see docs/benchmarks.md)
bench: setup
	$(VENV)/bin/python -m benchmarks.pipeline $(BENCH_ARGS)
	$(VENV)/bin/python -m benchmarks.platforms
	$(VENV)/bin/python -m benchmarks.archive

# The worker gets the last core to itself (as a deployment gives it one) on a machine with
# two or more; `make bench BENCH_ARGS=` lets it share the cores with the broker and the load.
BENCH_ARGS ?= $(shell n=$$(nproc); [ $$n -ge 2 ] && echo --worker-cpus $$((n - 1)))

## soak: the kill -9 test at length: 20 kills during 60,000 pings of 1,000 trucks (~4 min)
soak: setup
	YRD_FAULT_KILLS=20 YRD_FAULT_TRUCKS=1000 YRD_FAULT_TICKS=60 YRD_FAULT_PRODUCE_S=150 \
	YRD_FAULT_TIMEOUT_S=1800 $(VENV)/bin/python -m pytest tests/faults/test_crash.py -s

## schemas: regenerate schemas/ from the models
schemas: setup
	$(VENV)/bin/yrd-hazmat schemas

## screenshots: the desk's screenshots in docs/ renewed by its browser test (make test leaves docs/ alone)
screenshots: setup
	YRD_SCREENSHOTS_DIR=docs $(VENV)/bin/python -m pytest tests/integration/test_desk_browser.py tests/integration/test_desk_links_browser.py tests/integration/test_desk_track_browser.py

## clean: stop local services and remove their data and the venv
clean:
	-$(PY) deploy/local/services.py down --wipe
	rm -rf $(VENV) *.egg-info
