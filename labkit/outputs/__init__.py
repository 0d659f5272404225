"""What a graded class becomes: the gradebook files, the feedback pages, the class report, the
written questions' pages and scores, and the LMS export. Built from what grading recorded, never
by running a notebook, so every file can be written again at any time."""
