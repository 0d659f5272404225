"""Hidden-test helpers shipped inside the autograder zips.

Each assignment has one module here holding, per graded name, the inputs to try, an independent
reference and the checks; ``core`` holds what they share (devices, comparisons, messages). The
hidden test cells of a master notebook stay one line long and call into these modules, so that the
rules for a fair grade live in one reviewed place rather than in many notebook cells.
"""
