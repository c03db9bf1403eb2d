"""tests/data: every file listed in its README with the sha256 of the original, and nothing unlisted."""
import hashlib
import re


def test_every_reference_file_matches_its_recorded_sha256(ref_data):
    rows = re.findall(r"^\| `([^`]+)` \| [^|]+ \| `[^`]+` \| `[0-9a-f]+` \| (\d+) \| `([0-9a-f]{64})` \|$",
                      (ref_data / "README.md").read_text(encoding="utf-8"), re.M)
    listed = {name: (int(size), sha) for name, size, sha in rows}
    present = {str(p.relative_to(ref_data)) for p in ref_data.rglob("*") if p.is_file() and p.name != "README.md"}
    assert present == set(listed) and len(listed) == 59
    for name, (size, sha) in sorted(listed.items()):
        data = (ref_data / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha), name
