"""``make grade``: find each student's notebooks, grade each with its released autograder, and
write the gradebook. One module per step: discover -> run -> gradebook, driven by ``batch``."""
