"""tests/data: every file listed in its README with the sha256 of the original, and nothing unlisted."""
import hashlib
import re


def test_every_reference_file_matches_its_recorded_sha256(ref_data):
    rows = re.findall(r"^\| `([^`]+)` \| [^|]+ \| `[^`]+` \| `[0-9a-f]+` \| (\d+) \| `([0-9a-f]{64})` \|$",
                      (ref_data / "README.md").read_text(encoding="utf-8"), re.M)
    listed = {name: (int(size), sha) for name, size, sha in rows}
    present = {str(p.relative_to(ref_data)) for p in ref_data.rglob("*") if p.is_file() and p.name != "README.md"}
    assert present == set(listed) and len(listed) == 61
    for name, (size, sha) in sorted(listed.items()):
        data = (ref_data / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha), name


def test_the_summary_counts_the_tests_skipped_for_lack_of_the_optional_data(pytester, tmp_path, monkeypatch):
    from pathlib import Path

    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_big="""
        def test_b100(shared_data):
            assert (shared_data / "benchmark/B100").is_dir()

        def test_other():
            pass
    """)
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("SRPREP_TEST_DATA", str(missing))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([f"1 skipped for lack of the optional reference data (SRPREP_TEST_DATA: {missing})*"])
    (missing / "benchmark/B100").mkdir(parents=True)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert "skipped for lack" not in result.stdout.str()
