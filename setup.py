"""Build hook for the one compiled part of srprep (everything else is in setup.cfg).

``srprep/ops/_bicubic_native.c`` is the fast kernel of the MATLAB-exact bicubic downscale (see
``srprep/ops/imresize.py``). It is optional: where no C compiler is available the build goes on without it
and srprep uses its OpenCV/numpy path, which gives the same bytes, only slower.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "srprep.ops._bicubic_native",
            ["srprep/ops/_bicubic_native.c"],
            extra_compile_args=["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-Wall"],
            optional=True,
        )
    ]
)
