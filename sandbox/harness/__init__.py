"""Code that runs inside the sandbox: the trusted supervisor and the workers that run the code
under test. Standard library only, plus numpy (statistics, array equality), line_profiler,
pytest and coverage (the tests and their coverage of the target).

Mounted read-only in the sandbox under a different package name, so it uses relative imports
only and never imports the ``sandbox`` package.
"""
