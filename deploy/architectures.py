"""One deployment.zip for both Lambda architectures: ``Architecture`` (x86_64 or arm64) is a
template parameter, chosen at deploy time (Lambda on Graviton costs less per GB-second).

``chalice package`` builds the zip for x86_64. ``add_aarch64`` builds the same requirements
for arm64 with Chalice's own packager (manylinux wheels for aarch64, up to the runtime's glibc;
cached in ``.chalice/deployments`` as Chalice caches the x86_64 build) and adds to the zip
every native file of that build: extension modules and the libraries their wheels carry.
Python finds an extension module by the suffixes of the machine it runs on
(``importlib.machinery.EXTENSION_SUFFIXES``: on aarch64 ``.cpython-311-aarch64-linux-gnu.so``,
then ``.abi3.so``, then ``.so``), so the two machines' modules sit side by side:
``cramjam.cpython-311-x86_64-linux-gnu.so`` beside ``cramjam.cpython-311-aarch64-linux-gnu.so``.
A stable-ABI module has one name on both (``_message.abi3.so``): the x86_64 one keeps it and
the aarch64 one is added under the aarch64 suffix, which aarch64 tries first and x86_64
never. Bundled libraries are named after a hash of their content (auditwheel), so the two
machines' never collide.

Both builds must hold the same distributions at the same versions, and each x86_64 native
module must have its aarch64 twin: anything else stops the packaging.
"""
import posixpath
import zipfile
from typing import Dict, List

ARCHITECTURES = ("x86_64", "arm64")
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}  # Lambda's names, the wheel tags'
ELF_MAGIC = b"\x7fELF"
# e_machine of an ELF header (offset 18, little-endian): what each architecture runs.
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}


def parameters() -> dict:
    return {"Architecture": {
        "Type": "String", "Default": "x86_64", "AllowedValues": list(ARCHITECTURES),
        "Description": "The function's instruction set: x86_64, or arm64 (AWS Graviton, lower "
                       "price per GB-second). The code package carries the native modules of "
                       "both."}}


def elf_machine(data: bytes) -> str:
    """The machine an ELF file is built for ("x86_64", "aarch64"); "" if it is no ELF."""
    if data[:4] != ELF_MAGIC:
        return ""
    return ELF_MACHINES.get(int.from_bytes(data[18:20], "little"), "other")


def extension_suffix(python_version: str, machine: str) -> str:
    """``python3.11``, ``aarch64`` -> ``.cpython-311-aarch64-linux-gnu.so``."""
    return f".cpython-{python_version.replace('python', '').replace('.', '')}-{machine}-linux-gnu.so"


def module_of(name: str) -> str:
    """The module path an extension file provides (``google/_upb/_message``), or "" if the
    file is no extension module (a bundled library such as ``x.libs/libfoo-1a2b.so.1``)."""
    directory, filename = posixpath.split(name)
    if directory.endswith(".libs") or not filename.endswith(".so"):
        return ""
    return posixpath.join(directory, filename.split(".", 1)[0])


def distributions(names: List[str]) -> set:
    return {name.split("/", 1)[0] for name in names if ".dist-info/" in name}


def build_arm64(project_dir: str, python_version: str) -> str:
    """The arm64 build of the project's requirements (Chalice's packager, cached)."""
    from chalice.deploy.packager import (DependencyBuilder, LambdaDeploymentPackager,
                                         PipRunner, SubprocessPip)
    from chalice.utils import UI, OSUtils

    osutils = OSUtils()
    builder = DependencyBuilder(osutils=osutils, architecture="arm64", pip_runner=PipRunner(
        pip=SubprocessPip(osutils=osutils), osutils=osutils))
    return LambdaDeploymentPackager(osutils=osutils, dependency_builder=builder, ui=UI(),
                                    architecture="arm64").create_deployment_package(
        project_dir, python_version)


def add_aarch64(zip_path: str, arm64_zip: str, python_version: str) -> Dict[str, str]:
    """Adds the native files of ``arm64_zip`` to the x86_64 ``zip_path``; returns what was
    added, by name in the zip (and the name in the arm64 build). ValueError if the builds
    differ in anything but their native files, or a native module lacks its aarch64 twin."""
    with zipfile.ZipFile(zip_path) as x86:
        present = {info.filename: info.CRC for info in x86.infolist()}
        x86_modules = {module_of(name) for name in present
                       if module_of(name) and elf_machine(x86.read(name)[:20]) == "x86_64"}
    added: Dict[str, bytes] = {}
    origins: Dict[str, str] = {}
    with zipfile.ZipFile(arm64_zip) as arm:
        if distributions(arm.namelist()) != distributions(list(present)):
            raise ValueError("the x86_64 and arm64 builds hold other distributions: "
                             f"{sorted(distributions(arm.namelist()) ^ distributions(list(present)))}")
        for info in arm.infolist():
            data = arm.read(info)
            machine = elf_machine(data)
            if not machine:
                continue
            if machine != "aarch64":
                raise ValueError(f"{info.filename} of the arm64 build is built for {machine}")
            name = info.filename
            if name in present:
                if present[name] == info.CRC:
                    continue
                if not name.endswith(".abi3.so"):
                    raise ValueError(f"{name} differs between the x86_64 and arm64 builds")
                name = name[:-len(".abi3.so")] + extension_suffix(python_version, "aarch64")
            added[name], origins[name] = data, info.filename
    missing = x86_modules - {module_of(name) for name in added}
    if missing:
        raise ValueError(f"no aarch64 build of {sorted(missing)}")
    with zipfile.ZipFile(zip_path, "a", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(added.items()):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return origins
