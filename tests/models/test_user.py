"""Networks a user brings as ``package.module:Class`` or ``path/file.py:Class``: built, saved, loaded back only
when the user names them again."""
import sys
import textwrap

import pytest
import torch

from srprep.errors import SrprepError
from srprep.models import create_model, get_entry, load_pretrained, save_checkpoint
from srprep.models.user import is_user_spec, load_user_factory

NET = """
import pathlib
import torch
from torch import nn

pathlib.Path(__file__).with_name("imported.marker").touch()  # tells the test the module's code ran


class Net(nn.Module):
    def __init__(self, scale, width=4):
        super().__init__()
        self.conv = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        self.width = width

    def forward(self, x):
        return self.shuffle(self.conv(x))


def build(scale, **kwargs):
    return Net(scale, **kwargs)


def not_a_module(scale):
    return "a string"


def refuses(scale):
    raise ValueError(f"x{scale} is not supported")


CONSTANT = 3
"""


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(textwrap.dedent(NET))
    return path


def test_spec_syntax():
    assert is_user_spec("pkg.mod:Net") and is_user_spec("nets/my.py:Net") and is_user_spec("m:A.build")
    assert not is_user_spec("edsr") and not is_user_spec(":Net") and not is_user_spec("pkg.mod:")


def test_file_spec_builds_with_scale_and_kwargs(user_file):
    model = create_model(f"{user_file}:Net", scale=3, width=7)
    assert (user_file.parent / "imported.marker").is_file()
    assert model.width == 7 and model.arch_kwargs == {"width": 7}
    assert model(torch.rand(1, 3, 5, 6)).shape == (1, 3, 15, 18)
    # importing again reuses the module (one class object, not a second copy)
    assert type(create_model(f"{user_file}:build", scale=2)) is type(model)
    with pytest.raises(SrprepError, match=r"bad arguments \['nonsense'\]"):
        create_model(f"{user_file}:Net", scale=2, nonsense=1)


def test_module_spec_on_the_python_path(user_file, monkeypatch):
    monkeypatch.syspath_prepend(str(user_file.parent))
    model = create_model("mynet:build", scale=2)
    assert model(torch.rand(2, 3, 4, 4)).shape == (2, 3, 8, 8)
    assert get_entry("mynet:Net").name == "mynet:Net"


@pytest.mark.parametrize("attr, message", [
    ("Missing", "has no attribute 'Missing'"),
    ("CONSTANT", "is a int, not a class or function"),
    ("not_a_module", "returned a str, not a torch.nn.Module"),
    ("refuses", "failed (ValueError: x2 is not supported)"),
])
def test_bad_attributes_are_clear_errors(user_file, attr, message):
    with pytest.raises(SrprepError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_model(f"{user_file}:{attr}", scale=2)


def test_bad_modules_are_clear_errors(tmp_path):
    with pytest.raises(SrprepError, match="no such file"):
        load_user_factory(f"{tmp_path}/absent.py:Net")
    with pytest.raises(SrprepError, match="cannot import 'no_such_package_xyz.net'.*PYTHONPATH"):
        load_user_factory("no_such_package_xyz.net:Net")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(SrprepError, match=r"importing .*broken.py' failed \(RuntimeError: boom\)"):
        load_user_factory(f"{broken}:Net")


def test_checkpoint_never_imports_the_code_it_names(user_file, tmp_path, monkeypatch):
    spec = f"{user_file}:Net"
    model = create_model(spec, scale=2, width=5)
    path = save_checkpoint(model, tmp_path / "net.pt", spec, 2)
    monkeypatch.delitem(sys.modules, type(model).__module__)  # as in a new process: not imported yet
    marker = user_file.parent / "imported.marker"
    marker.unlink()
    with pytest.raises(SrprepError, match=r"not part of srprep; pass it yourself \(--arch .*mynet.py:Net"):
        load_pretrained(path)
    assert not marker.exists()
    loaded, info = load_pretrained(path, arch=spec)
    assert marker.exists()
    assert info.arch == spec and info.scale == 2 and info.kwargs == {"width": 5} and loaded.width == 5
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
