"""deploy/architectures.py: the arm64 build's native files join the x86_64 zip, side by side
under the names each machine's Python looks for, or the packaging stops."""
import zipfile

import pytest

from deploy import architectures

RUNTIME = "python3.11"


def elf(machine: int, filler: bytes = b"") -> bytes:
    """The first bytes of a 64-bit little-endian ELF file for ``machine`` (e_machine)."""
    return b"\x7fELF\x02\x01\x01" + b"\0" * 11 + machine.to_bytes(2, "little") + filler


X86, ARM = 62, 183


def make_zip(path, files: dict) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return str(path)


def builds(tmp_path, x86: dict, arm: dict):
    common = {"app.py": b"app", "cramjam-2.12.1.dist-info/WHEEL": b"Tag: x"}
    return (make_zip(tmp_path / "x86.zip", {**common, **x86}),
            make_zip(tmp_path / "arm.zip", {**common, "cramjam-2.12.1.dist-info/WHEEL": b"Tag: y",
                                            **arm}))


def test_native_files_are_added_beside_and_a_stable_abi_module_under_the_aarch64_suffix(tmp_path):
    x86, arm = builds(tmp_path, {
        "cramjam/cramjam.cpython-311-x86_64-linux-gnu.so": elf(X86),
        "google/_upb/_message.abi3.so": elf(X86),
        "pkg.libs/libz-1a2b.so.1": elf(X86, b"x86")},
        {"cramjam/cramjam.cpython-311-aarch64-linux-gnu.so": elf(ARM),
         "google/_upb/_message.abi3.so": elf(ARM),
         "pkg.libs/libz-3c4d.so.1": elf(ARM, b"arm"), "app.py": b"older app"})
    added = architectures.add_aarch64(x86, arm, RUNTIME)
    assert added == {
        "cramjam/cramjam.cpython-311-aarch64-linux-gnu.so":
            "cramjam/cramjam.cpython-311-aarch64-linux-gnu.so",
        "google/_upb/_message.cpython-311-aarch64-linux-gnu.so": "google/_upb/_message.abi3.so",
        "pkg.libs/libz-3c4d.so.1": "pkg.libs/libz-3c4d.so.1"}
    with zipfile.ZipFile(x86) as merged:
        assert merged.read("google/_upb/_message.abi3.so") == elf(X86)  # x86_64's stays
        assert merged.read("google/_upb/_message.cpython-311-aarch64-linux-gnu.so") == elf(ARM)
        assert merged.read("app.py") == b"app"  # only native files come from the arm64 build
        assert merged.read("cramjam-2.12.1.dist-info/WHEEL") == b"Tag: x"


@pytest.mark.parametrize("x86,arm,message", [
    ({"cramjam/cramjam.cpython-311-x86_64-linux-gnu.so": elf(X86)}, {}, "no aarch64 build of"),
    ({"_re2.cpython-311-x86_64-linux-gnu.so": elf(X86)},
     {"_re2.cpython-311-aarch64-linux-gnu.so": elf(X86)}, "built for x86_64"),
    ({"x.libs/libx.so": elf(X86)}, {"x.libs/libx.so": elf(ARM)}, "differs between"),
])
def test_a_build_that_cannot_run_on_both_stops_the_packaging(tmp_path, x86, arm, message):
    with pytest.raises(ValueError, match=message):
        architectures.add_aarch64(*builds(tmp_path, x86, arm), RUNTIME)


def test_builds_of_other_versions_stop_the_packaging(tmp_path):
    x86 = make_zip(tmp_path / "x86.zip", {"cramjam-2.12.1.dist-info/WHEEL": b""})
    arm = make_zip(tmp_path / "arm.zip", {"cramjam-2.14.0.dist-info/WHEEL": b""})
    with pytest.raises(ValueError, match="other distributions"):
        architectures.add_aarch64(x86, arm, RUNTIME)
