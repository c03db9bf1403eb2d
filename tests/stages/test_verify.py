"""srprep verify: contents re-read and compared with the hashes recorded as outputs were written."""
import subprocess
import sys
from pathlib import Path

import pytest

from srprep.io.images import read_image, write_image
from srprep.stages.downsample import downsample
from srprep.stages.pack import pack
from srprep.stages.verify import verify

REPO = Path(__file__).resolve().parents[2]


def srprep(*args):
    proc = subprocess.run([sys.executable, "-m", "srprep", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def data(samples, tmp_path):
    src = tmp_path / "src"
    for p in sorted((samples / "kodak").glob("*.png"))[:4]:
        write_image(src / p.name, read_image(p)[:96, :128])
    downsample(src, tmp_path / "data", [2], jobs=1, progress=False)
    pack(tmp_path / "data", tmp_path / "packed", jobs=1, progress=False)
    pack(tmp_path / "data", tmp_path / "h5", fmt="hdf5", encoding="png", jobs=1, progress=False)
    return tmp_path


def test_verify_passes_then_finds_a_same_size_edit_a_deleted_file_and_flipped_store_bytes(data):
    rep = verify(data)
    # DST/HR holds the sources hard-linked (their pixels are the HR's): links carry no hash of their own
    assert rep.problems == [] and rep.outputs == 4 and rep.stores == 3 and rep.values == 16
    assert (rep.files, rep.unchecked) == (4, 4)
    code, out, err = srprep("verify", data)
    assert code == 0 and ("verify: 4 step outputs, 4 files (4 links or unhashed files not checkable) and 3 stores "
                          "(16 values) checked") in out

    lr = data / "data/X2/kodim01x2.png"
    raw = bytearray(lr.read_bytes())
    size = len(raw)
    raw[size // 2] ^= 0x01  # changed in place, same size: what the fast check of a rerun cannot see
    lr.write_bytes(bytes(raw))
    (data / "data/HR/kodim02.png").unlink()
    # a flipped byte in the middle of an LMDB value (the file keeps its size and its header)
    from srprep.io.lmdb_store import LmdbStore

    store = LmdbStore(data / "packed/X2.lmdb")
    value = store.read_bytes("kodim03")
    store.close()
    mdb = data / "packed/X2.lmdb/data.mdb"
    raw = bytearray(mdb.read_bytes())
    at = raw.find(value)
    assert at > 0
    raw[at + len(value) // 2] ^= 0xFF
    mdb.write_bytes(bytes(raw))

    code, out, err = srprep("verify", data)
    assert code == 1
    lines = out.strip().splitlines()
    assert f"{lr}: content changed since it was written (item 'kodim01'; {size} -> {size} bytes)" in lines
    assert f"{data / 'data/HR/kodim02.png'}: missing (item 'kodim02')" in lines
    assert f"{data / 'packed/X2.lmdb'}: item 'kodim03': value changed since it was written (CRC-32)" in lines
    assert err.strip().startswith("error: verify: 4 step outputs") and "3 problem(s)" in err


def test_verify_of_a_folder_without_outputs_is_an_error(tmp_path):
    code, _, err = srprep("verify", tmp_path)
    assert code == 1 and "no srprep step output found here" in err
