"""The examples in the docstrings of srprep.ops.degrade run and give what they show."""
import doctest
import importlib

import pytest

MODULES = ["", ".contact", ".filtering", ".jpeg", ".kernels", ".noise", ".params", ".pipeline", ".recipes",
           ".resize", ".rng", ".sharpen"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module("srprep.ops.degrade" + name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
