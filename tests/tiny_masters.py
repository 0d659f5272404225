"""What a small master notebook written by a test needs: its otter configuration, as the course's
own masters state it (``assignments/<lab>/<stem>/<stem>.ipynb``, first cell)."""

from __future__ import annotations


def assignment_config(stem: str) -> str:
    """The raw first cell of a master named ``stem``: otter's assignment configuration."""
    return f"""# ASSIGNMENT CONFIG
name: {stem}
init_cell: true
check_all_cell: false
export_cell:
  pdf: false
  run_tests: true
  instructions: "Upload the zip file this cell writes; it holds your notebook."
generate:
  pdf: false
  show_stdout: true
  show_hidden: true
tests:
  ok_format: false
autograder_files:
  - labkit
requirements: requirements.txt
python_version: "3.11"
"""
