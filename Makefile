# The kit's commands. Every target runs from .venv/, created on first use from the pinned
# requirements (torch 2.13.0 CPU build, otter-grader 7.0.0, ...).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

# LAB=lab2 grades (or releases) one lab of assignments/; default: the course's first lab.
LAB ?=
# The class to grade; default: the lab's demo class (demo/<lab>/submissions).
SUBMISSIONS ?=
OUT ?= grades
WORKERS ?=
# Seconds one notebook may run in all; empty: the default of labkit.sandbox.confine.Limits.
TIMEOUT ?=
# Scores of the written questions, given by hand (default: OUT/manual_scores.csv).
MANUAL_SCORES ?=
# UNCONFINED=1 grades without confining student code (only where user namespaces are forbidden).
UNCONFINED ?=
# SHARD=K/N grades only shard K (0 to N-1) of N, into its own OUT; make merge SHARDS="out0 out1 ..."
# then writes the whole class's OUT from the shards' (see docs/ta-cluster.md).
SHARD ?=
SHARDS ?=
# DEADLINES=deadlines.toml: due times, extensions and the late policy; TIMES=times.csv: hand-in
# times, which win over the LMS download's (see docs/ta-grading.md, late work).
DEADLINES ?=
TIMES ?=
# make export: the learning management system (canvas or moodle) and the roster: the LMS's own
# gradebook export (Canvas) or grading worksheet (Moodle), or a CSV mapping submission names to its
# students; COLUMNS: a TOML file mapping assignment stems to the LMS's columns, taken from make's
# command line only (terminals export COLUMNS, their width, into the environment).
LMS ?=
ROSTER ?=
COLUMNS_FILE = $(if $(filter command line,$(origin COLUMNS)),$(COLUMNS))
# make grade: Moodle's grading worksheet, for the submission times of a Moodle download.
WORKSHEET ?=
# make similarity: an earlier year's submissions to compare the class with (optional).
EARLIER ?=

# make audit: the graded mutants and the table go to OUT when given, else to audit/ (not grades/).
AUDIT_OUT = $(if $(filter file,$(origin OUT)),audit,$(OUT))
# make audit PER_QUESTION=n grades only n mutants per question; ASSIGNMENTS="1_2_..." only those.
PER_QUESTION ?=
ASSIGNMENTS ?=

# The default TIMEOUT, for make help, read from Limits (with any python3 before .venv/ exists).
DEFAULT_TIMEOUT = $(shell $(if $(wildcard $(PY)),$(PY),$(PYTHON)) -c 'from labkit.cli import DEFAULT_TIMEOUT; print(DEFAULT_TIMEOUT)' 2>/dev/null || echo "see labkit.sandbox.confine.Limits")

.PHONY: help grade merge export similarity release test audit bench gpu-check clean

help:
	@echo "make grade [LAB=lab] [SUBMISSIONS=dir] [OUT=dir] [WORKERS=n]  grade one lab's submissions (default: the first lab's demo class)"
	@echo "           [TIMEOUT=s]                              seconds one notebook may run in all (default $(DEFAULT_TIMEOUT))"
	@echo "           [WORKSHEET=grading.csv]                  Moodle's grading worksheet: submission times of a Moodle download"
	@echo "           [DEADLINES=deadlines.toml] [TIMES=times.csv]  due times and late policy; hand-in times"
	@echo "make grade SHARD=k/n OUT=shards/k                   grade only shard k (0 to n-1) of n of the class"
	@echo "make merge SHARDS='shards/*' [OUT=dir]              merge the shards' OUTs into one OUT"
	@echo "           [DEADLINES=deadlines.toml] [TIMES=times.csv]  as for make grade"
	@echo "make test                                           run the kit's tests"
	@echo "make audit [OUT=dir] [PER_QUESTION=n] [ASSIGNMENTS=stems]  mutation score of each question's hidden tests"
	@echo "make export LMS=canvas|moodle ROSTER=roster.csv [OUT=dir]  write OUT's grades as the LMS's gradebook import"
	@echo "           [COLUMNS=columns.toml]                   (ROSTER: Canvas's gradebook export or Moodle's grading worksheet: fills its columns)"
	@echo "make similarity [LAB=lab] [SUBMISSIONS=dir] [OUT=dir] [EARLIER=dir]  rank pairs of alike answers, per question (OUT/similarity.html)"
	@echo "make release [LAB=lab] [ASSIGNMENTS=stems]         regenerate student/, autograder/, solutions/, demo/ from assignments/ (all labs by default)"
	@echo "make bench [COPIES=n]                               what grading costs against the notebooks' own cost and otter run"
	@echo "make gpu-check [WORKERS=n]                          prove grading on CUDA (see docs/maintainers.md)"

$(INSTALLED): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(INSTALLED)

grade: $(INSTALLED)
	$(PY) -m labkit grade $(if $(LAB),--lab $(LAB)) $(if $(SUBMISSIONS),--submissions "$(SUBMISSIONS)") --out "$(OUT)" $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(MANUAL_SCORES),--manual-scores "$(MANUAL_SCORES)") $(if $(UNCONFINED),--unconfined) $(if $(SHARD),--shard $(SHARD)) $(if $(DEADLINES),--deadlines "$(DEADLINES)") $(if $(TIMES),--times "$(TIMES)") $(if $(WORKSHEET),--worksheet "$(WORKSHEET)")

merge: $(INSTALLED)
	@test -n "$(SHARDS)" || { echo "usage: make merge SHARDS='shards/*' [OUT=dir] [MANUAL_SCORES=path] [DEADLINES=path] [TIMES=path]"; exit 2; }
	$(PY) -m labkit merge $(SHARDS) --out "$(OUT)" $(if $(MANUAL_SCORES),--manual-scores "$(MANUAL_SCORES)") $(if $(DEADLINES),--deadlines "$(DEADLINES)") $(if $(TIMES),--times "$(TIMES)")

export: $(INSTALLED)
	@test -n "$(LMS)" -a -n "$(ROSTER)" || { echo "usage: make export LMS=canvas|moodle ROSTER=roster.csv [OUT=dir]"; exit 2; }
	$(PY) -m labkit export --lms "$(LMS)" --roster "$(ROSTER)" --out "$(OUT)" $(if $(COLUMNS_FILE),--columns "$(COLUMNS_FILE)")

similarity: $(INSTALLED)
	$(PY) -m labkit similarity $(if $(LAB),--lab $(LAB)) $(if $(SUBMISSIONS),--submissions "$(SUBMISSIONS)") --out "$(OUT)" $(if $(EARLIER),--earlier "$(EARLIER)")

bench: $(INSTALLED)
	$(PY) -m labkit.bench $(if $(COPIES),--copies $(COPIES)) $(if $(WORKERS),--workers $(WORKERS))

release: $(INSTALLED)
	$(PY) -m labkit release $(if $(LAB),--lab $(LAB)) $(ASSIGNMENTS)

audit: $(INSTALLED)
	$(PY) -m labkit audit --out "$(AUDIT_OUT)" $(if $(WORKERS),--workers $(WORKERS)) $(if $(PER_QUESTION),--per-question $(PER_QUESTION)) $(ASSIGNMENTS)

test: $(INSTALLED)
	tools/ensure-chromium
	$(PY) -m pytest

# No dependency on the install step: a GPU machine has no network; tools/gpu-check installs the
# wheels carried in .whl/ (tools/gpu-wheels) or uses .venv/.
gpu-check:
	tools/gpu-check $(if $(WORKERS),--workers $(WORKERS))

clean:
	rm -rf $(VENV) grades .pytest_cache
