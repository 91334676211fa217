# The two commands of the README. Both install what is missing first (idempotent).
SHELL := /bin/bash
VENV := .venv
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: install test demo lint clean

install:
	@bash robot_ws/install.sh

test: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

demo: install
	$(VENV)/bin/retailbot demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) out build install log
