"""The course's content and its release: the master notebooks, what ``make release`` makes of
them (student notebooks, autograder zips, solutions, the demo class), and the released
autograders read back as data. Knows nothing of how notebooks are run or graded."""
