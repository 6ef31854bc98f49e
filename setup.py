"""Build settings that pyproject.toml cannot express: the native term scanner.

``_scan.c`` is the compiled form of ``TermMatcher``'s scan (see text.py).
It is optional: without a C compiler the package still installs, and the
classifier uses the pure-Python matcher, with the same results, more slowly.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "complaint_stream.domain.classification._scan",
            ["complaint_stream/domain/classification/_scan.c"],
            optional=True,
        )
    ]
)
