# The two commands of the README. Both install what is missing first (idempotent).
SHELL := /bin/bash
VENV := .venv
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: install test demo lint clean

install:
	@bash robot_ws/install.sh

test: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Formatting is checked on the packages already formatted with `ruff format`; a package joins
# FORMATTED once `ruff format src/<it>` has been applied (as a pure package joins mypy's files).
FORMATTED := src/common src/ros src/observe src/demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check $(FORMATTED)
	$(VENV)/bin/mypy

demo: install
	$(VENV)/bin/retailbot demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) out build install log
